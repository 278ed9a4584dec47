//! Which IP addresses are internal: the IANA special-purpose address
//! registries for IPv4 and IPv6, where a forged callback could reach
//! internal services or the instance metadata endpoint.
//!
//! An address that embeds an IPv4 address is judged at least as strictly
//! as the embedded address: IPv4-mapped and NAT64 addresses by it, the
//! other embedding forms (6to4, Teredo, IPv4-compatible) are internal
//! whatever they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The IPv4 Special-Purpose Address Registry (RFC 6890), with multicast
/// and the reserved block. Ranges the registry marks globally reachable
/// (AS112, AMT, the anycast /32s of 192.0.0/24) are here too: no callback
/// receiver lives at them.
const V4_SPECIAL: &[(Ipv4Addr, u8)] = &[
    // "This network", 0.0.0.0/32 "this host" among it: RFC 791 §3.2, RFC 1122 §3.2.1.3.
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    // Private-Use: RFC 1918.
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    // Shared Address Space (carrier-grade NAT): RFC 6598.
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    // Loopback: RFC 1122 §3.2.1.3.
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    // Link Local, the metadata endpoint 169.254.169.254 among it: RFC 3927.
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    // Private-Use: RFC 1918.
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    // IETF Protocol Assignments: RFC 6890 §2.1 (DS-Lite 192.0.0.0/29
    // RFC 7335, dummy 192.0.0.8 RFC 7600, PCP and TURN anycast RFC 7723 and
    // RFC 8155, NAT64 discovery 192.0.0.170/31 RFC 8880).
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    // Documentation TEST-NET-1: RFC 5737.
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    // AS112-v4: RFC 7535.
    (Ipv4Addr::new(192, 31, 196, 0), 24),
    // AMT: RFC 7450.
    (Ipv4Addr::new(192, 52, 193, 0), 24),
    // Deprecated 6to4 Relay Anycast: RFC 7526 (6a44 192.88.99.2, RFC 6751).
    (Ipv4Addr::new(192, 88, 99, 0), 24),
    // Private-Use: RFC 1918.
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    // Direct Delegation AS112 Service: RFC 7534.
    (Ipv4Addr::new(192, 175, 48, 0), 24),
    // Benchmarking: RFC 2544.
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    // Documentation TEST-NET-2: RFC 5737.
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    // Documentation TEST-NET-3: RFC 5737.
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    // Multicast: RFC 5771.
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    // Reserved: RFC 1112 §4; 255.255.255.255 Limited Broadcast (RFC 919
    // §7, RFC 8190) is its last address.
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// NAT64 well-known prefix, RFC 6052: the last 32 bits are an IPv4
/// address, judged as such (AWS VPCs route it, so 64:ff9b::a9fe:a9fe is
/// the metadata endpoint).
const NAT64: (Ipv6Addr, u8) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

/// The IPv6 Special-Purpose Address Registry (RFC 6890), with the
/// deprecated and multicast blocks. IPv4-mapped and NAT64 addresses are
/// judged by their IPv4 address before this list is consulted.
const V6_SPECIAL: &[(Ipv6Addr, u8)] = &[
    // Unspecified ::/128 and Loopback ::1/128 (RFC 4291 §2.5.2-3), inside
    // IPv4-compatible ::/96 (deprecated, RFC 4291 §2.5.5.1), all internal.
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96),
    // IPv4-translated ::ffff:0:a.b.c.d (SIIT, RFC 2765 §2.1): an embedding
    // outside the registry, internal whatever it embeds.
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96),
    // Local-Use IPv4/IPv6 Translation: RFC 8215.
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
    // Discard-Only: RFC 6666.
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
    // Dummy IPv6 Prefix: RFC 9780.
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64),
    // IETF Protocol Assignments, RFC 2928: Teredo 2001::/32 (RFC 4380,
    // embeds an IPv4 address), PCP/TURN/DNS-SD anycast 2001:1::1-3 (RFC
    // 7723, RFC 8155, RFC 9665), Benchmarking 2001:2::/48 (RFC 5180), AMT
    // 2001:3::/32 (RFC 7450), AS112-v6 2001:4:112::/48 (RFC 7535), ORCHID
    // and ORCHIDv2 2001:10::/28, 2001:20::/28 (RFC 4843, RFC 7343), Drone
    // Remote ID 2001:30::/28 (RFC 9374).
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    // Documentation: RFC 3849.
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    // 6to4: RFC 3056; embeds an IPv4 address (2002:7f00:1:: is 127.0.0.1),
    // all internal.
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),
    // Direct Delegation AS112 Service: RFC 7534.
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48),
    // Documentation: RFC 9637.
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
    // Segment Routing SIDs: RFC 9602.
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16),
    // Unique-Local: RFC 4193.
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    // Link-Local Unicast: RFC 4291 §2.5.6.
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    // Site-Local (deprecated): RFC 3879.
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
    // Multicast: RFC 4291 §2.7.
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

/// Global Unicast, RFC 4291 §2.4 and the IANA IPv6 address space registry:
/// everything outside it (bar the IPv4 embeddings judged first) is reserved
/// or special and so internal, whether or not listed above.
const GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Not a public unicast address.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

pub(crate) fn is_internal_v4(ip: Ipv4Addr) -> bool {
    V4_SPECIAL.iter().any(|&(net, len)| in_v4(ip, net, len))
}

pub(crate) fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    if in_v6(ip, NAT64.0, NAT64.1) {
        return is_internal_v4(Ipv4Addr::from_bits(ip.to_bits() as u32));
    }
    V6_SPECIAL.iter().any(|&(net, len)| in_v6(ip, net, len))
        || !in_v6(ip, GLOBAL_UNICAST.0, GLOBAL_UNICAST.1)
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is its IPv4 address,
/// for comparing with allowlist entries.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    ip.to_bits() & mask == net.to_bits() & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    ip.to_bits() & mask == net.to_bits() & mask
}

#[cfg(test)]
#[path = "special_tests.rs"]
mod tests;
