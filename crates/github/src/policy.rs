//! Which callback URLs previewd may call. A callback URL arrives with a
//! dispatch, so without a check it would let any caller make previewd send
//! signed requests anywhere, the cloud metadata address included.

use reqwest::Url;
use reqwest::header::HeaderValue;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`: any public host name or public IP address.
    Any,
    /// `hooks.example.com`: that host only.
    Exact(String),
    /// `*.example.com`, kept as `.example.com`: any host below it, not the
    /// domain itself.
    Suffix(String),
    /// An IP address, the only way to allow a private or loopback one.
    Ip(IpAddr),
}

/// The callback host allowlist.
///
/// Entries are exact host names (`qa.example.com`), `*.suffix` patterns
/// (`*.example.com` matches `a.example.com` and `a.b.example.com`, not
/// `example.com`), IP addresses, or `*` for any public host. Ports are not
/// part of an entry. The default allows nothing.
///
/// # Guarantees
/// An IP literal in a private, loopback, link-local, shared or reserved
/// range, and `localhost`, pass only when listed exactly, even under `*`.
///
/// # Caveats
/// Host names are checked as written, not resolved: a listed name that
/// resolves to a private address is the operator's choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackPolicy {
    patterns: Vec<HostPattern>,
}

impl CallbackPolicy {
    /// Parses allowlist entries; an entry that is none of the accepted
    /// forms is an error naming it.
    pub fn new<I, S>(entries: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = entries
            .into_iter()
            .map(|e| parse_pattern(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(CallbackPolicy { patterns })
    }

    /// Whether previewd may post to `url`; the error is a sentence for a
    /// 422 on `callback_url`.
    pub fn allows(&self, url: &str) -> Result<(), String> {
        let parsed = Url::parse(url).map_err(|e| format!("not an absolute URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("must use http or https, not {:?}", parsed.scheme()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        // The URL parser has already turned `127.1` or `0x7f.0.0.1` into
        // 127.0.0.1, and brackets an IPv6 literal.
        let host = parsed.host_str().ok_or("has no host")?;
        let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        match unbracketed.parse::<IpAddr>() {
            Ok(ip) => self.allows_ip(ip),
            Err(_) => self.allows_name(host),
        }
    }

    fn allows_name(&self, host: &str) -> Result<(), String> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let loopback = host == "localhost" || host.ends_with(".localhost");
        let listed = self.patterns.iter().any(|p| match p {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Suffix(s) => host.ends_with(s.as_str()),
            HostPattern::Any | HostPattern::Ip(_) => false,
        });
        if listed {
            return Ok(());
        }
        if loopback {
            return Err(format!(
                "host {host} is loopback; only an exact allowlist entry allows it"
            ));
        }
        if self.patterns.contains(&HostPattern::Any) {
            return Ok(());
        }
        Err(format!("host {host} is not in the callback allowlist"))
    }

    fn allows_ip(&self, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        if self.patterns.contains(&HostPattern::Ip(ip)) {
            return Ok(());
        }
        if is_internal(ip) {
            return Err(format!(
                "{ip} is a private, loopback or reserved address; only an exact allowlist \
                 entry allows it"
            ));
        }
        if self.patterns.contains(&HostPattern::Any) {
            return Ok(());
        }
        Err(format!("host {ip} is not in the callback allowlist"))
    }
}

fn parse_pattern(raw: &str) -> Result<HostPattern, String> {
    let bad = || {
        format!(
            "callback allowlist entry {raw:?}: expected a host name, *.suffix, an IP address or *"
        )
    };
    let lower = raw.trim().to_ascii_lowercase();
    if lower == "*" {
        return Ok(HostPattern::Any);
    }
    // One trailing dot is the DNS root; stripping it must not make `*.`
    // into `*`.
    let entry = lower.strip_suffix('.').unwrap_or(&lower).to_owned();
    let unbracketed = entry.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(canonical(ip)));
    }
    let (suffix, name) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, entry.as_str()),
    };
    if !is_host_name(name) {
        return Err(bad());
    }
    Ok(if suffix {
        HostPattern::Suffix(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_owned())
    })
}

/// Dot-separated labels of letters, digits, `-` and `_`, none empty.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && HeaderValue::from_str(name).is_ok()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Not a public unicast address: where a forged callback could reach
/// internal services or the instance metadata endpoint.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254/16, with the metadata endpoint
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 224 // multicast and reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xff00) == 0xff00 // multicast
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_or_are_named_in_the_error() {
        assert!(
            CallbackPolicy::new(["qa.example.com", "*.example.org", "10.0.0.5", "[::1]", "*"])
                .is_ok()
        );
        for bad in ["", "*.", "a..b", "http://x", "ex ample.com", "*foo.com"] {
            let e = CallbackPolicy::new([bad]).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn internal_ranges() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(canonical(ip.parse().unwrap())), "{ip}");
        }
        for ip in ["8.8.8.8", "140.82.112.3", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_internal(canonical(ip.parse().unwrap())), "{ip}");
        }
    }
}
