//! The special-purpose ranges, written out again from the registries
//! rather than read from the table under test.

use super::*;
use proptest::prelude::*;

const V4_RANGES: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
];

/// Ranges that are internal whatever the rest of the address holds
/// (IPv4-mapped and NAT64 are judged by what they embed, tested below).
const V6_RANGES: &[&str] = &[
    "::/128",
    "::1/128",
    "::/96",
    "::ffff:0:0:0/96",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001::/32",
    "2001:2::/48",
    "2001:db8::/32",
    "2002::/16",
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

const PUBLIC: &[&str] = &[
    "8.8.8.8",
    "1.1.1.1",
    "140.82.112.3",
    "172.32.0.1",
    "100.128.0.1",
    "192.0.3.1",
    "198.20.0.1",
    "11.0.0.1",
    "223.255.255.255",
    "2606:4700::1111",
    "2a00:1450:4001:82b::200e",
    "2001:200::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
];

fn v4_range(cidr: &str) -> (u32, u32) {
    let (net, len) = cidr.split_once('/').unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    (net.parse::<Ipv4Addr>().unwrap().to_bits() & mask, mask)
}

fn v6_range(cidr: &str) -> (u128, u128) {
    let (net, len) = cidr.split_once('/').unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    (net.parse::<Ipv6Addr>().unwrap().to_bits() & mask, mask)
}

/// An internal IPv4 address: one of the ranges above, random within it.
fn internal_v4() -> impl Strategy<Value = Ipv4Addr> {
    (0..V4_RANGES.len(), any::<u32>()).prop_map(|(i, bits)| {
        let (net, mask) = v4_range(V4_RANGES[i]);
        Ipv4Addr::from_bits(net | (bits & !mask))
    })
}

fn v6(hi: u128, v4: Ipv4Addr) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from_bits(hi | u128::from(v4.to_bits())))
}

proptest! {
    #[test]
    fn every_address_in_a_listed_v4_range_is_internal(ip in internal_v4()) {
        prop_assert!(is_internal(IpAddr::V4(ip)), "{ip}");
    }

    #[test]
    fn every_address_in_a_listed_v6_range_is_internal(
        i in 0..V6_RANGES.len(),
        bits in any::<u128>(),
    ) {
        let (net, mask) = v6_range(V6_RANGES[i]);
        let ip = Ipv6Addr::from_bits(net | (bits & !mask));
        prop_assert!(is_internal(IpAddr::V6(ip)), "{ip} in {}", V6_RANGES[i]);
    }

    #[test]
    fn embedded_forms_of_internal_v4_addresses_are_internal(
        ip in internal_v4(),
        rest in any::<u128>(),
    ) {
        let b = u128::from(ip.to_bits());
        let forms = [
            ("mapped", v6(0xffff << 32, ip)),
            ("nat64", v6(0x64_ff9b << 96, ip)),
            ("compatible", v6(0, ip)),
            ("translated", v6(0xffff << 48, ip)),
            // 6to4: 2002:AABB:CCDD::/48, any subnet and interface.
            ("6to4", IpAddr::V6(Ipv6Addr::from_bits(
                (0x2002 << 112) | (b << 80) | (rest & ((1 << 80) - 1)),
            ))),
            // Teredo: 2001:0:SERVER:..:CLIENT^ffffffff, either end.
            ("teredo server", IpAddr::V6(Ipv6Addr::from_bits(
                (0x2001 << 112) | (b << 64) | (rest & u128::from(u64::MAX)),
            ))),
            ("teredo client", IpAddr::V6(Ipv6Addr::from_bits(
                (0x2001 << 112) | (rest & (u128::MAX >> 32) & !u128::from(u32::MAX))
                    | (b ^ u128::from(u32::MAX)),
            ))),
        ];
        for (name, form) in forms {
            prop_assert!(is_internal(form), "{name}: {form} embeds {ip}");
        }
    }

    #[test]
    fn mapped_and_nat64_addresses_are_judged_by_their_v4_address(bits in any::<u32>()) {
        let ip = Ipv4Addr::from_bits(bits);
        let internal = is_internal(IpAddr::V4(ip));
        prop_assert_eq!(is_internal(IpAddr::V6(ip.to_ipv6_mapped())), internal);
        prop_assert_eq!(is_internal(v6(0x64_ff9b << 96, ip)), internal);
    }

    #[test]
    fn nothing_outside_global_unicast_is_public(bits in any::<u128>()) {
        let ip = Ipv6Addr::from_bits(bits);
        let embeds_v4 = ip.to_ipv4_mapped().is_some() || bits >> 32 == 0x64_ff9b << 64;
        if bits >> 125 != 0b001 && !embeds_v4 {
            prop_assert!(is_internal(IpAddr::V6(ip)), "{ip}");
        }
    }
}

#[test]
fn the_metadata_endpoint_is_internal_in_every_spelling() {
    for ip in [
        "169.254.169.254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "::a9fe:a9fe",
        "fd00:ec2::254",
    ] {
        assert!(is_internal(ip.parse().unwrap()), "{ip}");
    }
    assert!(is_internal("2002:7f00:1::".parse().unwrap()));
}

#[test]
fn public_examples_are_not_internal() {
    for ip in PUBLIC {
        assert!(!is_internal(ip.parse().unwrap()), "{ip}");
    }
}

#[test]
fn canonical_unmaps_only_mapped_addresses() {
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert_eq!(canonical(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    let nat64: IpAddr = "64:ff9b::a00:1".parse().unwrap();
    assert_eq!(canonical(nat64), nat64);
}
