//! Which callback URLs previewd may call. A callback URL arrives with a
//! dispatch, so without a check it would let any caller make previewd send
//! signed requests anywhere, the cloud metadata address included.

use crate::resolve::{VET_TIMEOUT, resolve_allowed};
use crate::special::{canonical, is_internal};
use reqwest::Url;
use reqwest::header::HeaderValue;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`: any public host name or public IP address.
    Any,
    /// `hooks.example.com`: that host only.
    Exact(String),
    /// `*.example.com`, kept as `.example.com`: any host below it, not the
    /// domain itself.
    Suffix(String),
    /// An IP address, the only way to allow an internal one.
    Ip(IpAddr),
}

/// The ports an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    /// No port in the entry: 80 and 443.
    Web,
    /// `host:8443`: that port only.
    One(u16),
    /// `host:*`: any port.
    Any,
}

impl Ports {
    fn allow(self, port: u16) -> bool {
        match self {
            Ports::Web => port == 80 || port == 443,
            Ports::One(p) => p == port,
            Ports::Any => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: HostPattern,
    ports: Ports,
}

/// The callback allowlist.
///
/// An entry is a host with an optional port: exact host names
/// (`qa.example.com`), `*.suffix` patterns (`*.example.com` matches
/// `a.example.com` and `a.b.example.com`, not `example.com`), IP addresses
/// (an IPv6 one in brackets when a port follows), or `*` for any public
/// host. Without a port an entry allows 80 and 443; `host:8443` allows
/// that port only and `host:*` any port. A URL without a port uses its
/// scheme's. The default allows nothing.
///
/// # Guarantees
/// - An internal address (the IANA special-purpose registries, see
///   `special.rs`: private, loopback, link-local, shared, documentation,
///   multicast, reserved, and every IPv6 form that embeds such an IPv4
///   address), and `localhost`, pass only when listed exactly, even under
///   `*`.
/// - A host name is resolved by previewd, not by the HTTP stack:
///   [`CallbackClient`](crate::CallbackClient) connects only to addresses
///   of the name that are public or listed exactly, the same answer it
///   checked, so a name that resolves (or re-resolves) to 127.0.0.1 or
///   169.254.169.254 is never called. [`CallbackPolicy::vet`] applies the
///   same rule when a dispatch arrives.
///
/// # Caveats
/// - Ports of a host name are judged by the name's entries; an internal IP
///   listed with a port (`10.0.0.5:9000`) lets a listed name that resolves
///   to it be called on that name's allowed ports.
/// - A bare IPv6 entry takes no port (`fd00::5:9000` is one address); write
///   `[fd00::5]:9000`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackPolicy {
    entries: Vec<Entry>,
}

impl CallbackPolicy {
    /// Parses allowlist entries; an entry that is none of the accepted
    /// forms is an error naming it.
    pub fn new<I, S>(entries: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = entries
            .into_iter()
            .map(|e| parse_entry(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(CallbackPolicy { entries })
    }

    /// Whether previewd may post to `url`, judged on the URL alone (scheme,
    /// host, port); the error is a sentence for a 422 on `callback_url`.
    pub fn allows(&self, url: &str) -> Result<(), String> {
        self.check(url).map(drop)
    }

    /// [`allows`](Self::allows), then for a host name: resolves it (within
    /// about two seconds) and refuses when none of its addresses may be
    /// called. For the API to run before it accepts a `callback_url`.
    pub async fn vet(&self, url: &str) -> Result<(), String> {
        match self.check(url)? {
            Some(name) => resolve_allowed(self, &name, VET_TIMEOUT)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Whether a resolved address of an allowed name may be connected to:
    /// public, or an internal address listed exactly.
    pub(crate) fn allows_resolved(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.lists_ip(canonical(ip))
    }

    /// The syntactic check; `Some(name)` when the host is a name to resolve.
    fn check(&self, url: &str) -> Result<Option<String>, String> {
        let parsed = Url::parse(url).map_err(|e| format!("not an absolute URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("must use http or https, not {:?}", parsed.scheme()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        let port = parsed.port_or_known_default().ok_or("has no port")?;
        // The URL parser has already turned `127.1` or `0x7f.0.0.1` into
        // 127.0.0.1, and brackets an IPv6 literal.
        let host = parsed.host_str().ok_or("has no host")?;
        let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        match unbracketed.parse::<IpAddr>() {
            Ok(ip) => self.allows_ip(ip, port).map(|()| None),
            Err(_) => self.allows_name(host, port).map(Some),
        }
    }

    fn allows_name(&self, host: &str, port: u16) -> Result<String, String> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let loopback = host == "localhost" || host.ends_with(".localhost");
        let ports: Vec<Ports> = self
            .entries
            .iter()
            .filter(|e| match &e.host {
                HostPattern::Exact(h) => *h == host,
                HostPattern::Suffix(s) => host.ends_with(s.as_str()),
                HostPattern::Any => !loopback,
                HostPattern::Ip(_) => false,
            })
            .map(|e| e.ports)
            .collect();
        if ports.is_empty() && loopback {
            return Err(format!(
                "host {host} is loopback; only an exact allowlist entry allows it"
            ));
        }
        allows_port(&host, &ports, port)?;
        Ok(host)
    }

    fn allows_ip(&self, ip: IpAddr, port: u16) -> Result<(), String> {
        let ip = canonical(ip);
        let internal = is_internal(ip);
        let ports: Vec<Ports> = self
            .entries
            .iter()
            .filter(|e| match e.host {
                HostPattern::Ip(listed) => listed == ip,
                HostPattern::Any => !internal,
                HostPattern::Exact(_) | HostPattern::Suffix(_) => false,
            })
            .map(|e| e.ports)
            .collect();
        if ports.is_empty() && internal {
            return Err(format!(
                "{ip} is a private, loopback or reserved address; only an exact allowlist \
                 entry allows it"
            ));
        }
        allows_port(&ip.to_string(), &ports, port)
    }

    fn lists_ip(&self, ip: IpAddr) -> bool {
        self.entries.iter().any(|e| e.host == HostPattern::Ip(ip))
    }
}

/// `ports` are those of the entries matching `host`; none means the host
/// is not listed.
fn allows_port(host: &str, ports: &[Ports], port: u16) -> Result<(), String> {
    if ports.is_empty() {
        return Err(format!("host {host} is not in the callback allowlist"));
    }
    if ports.iter().any(|p| p.allow(port)) {
        return Ok(());
    }
    Err(format!(
        "port {port} is not allowed: only 80 and 443 unless an allowlist entry names host:port"
    ))
}

fn parse_entry(raw: &str) -> Result<Entry, String> {
    let bad = || {
        format!(
            "callback allowlist entry {raw:?}: expected a host name, *.suffix, an IP address \
             or *, optionally followed by :port or :*"
        )
    };
    let lower = raw.trim().to_ascii_lowercase();
    let (host, port) = split_port(&lower).ok_or_else(bad)?;
    let ports = match port {
        None => Ports::Web,
        Some("*") => Ports::Any,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => Ports::One(p),
            _ => {
                return Err(format!(
                    "callback allowlist entry {raw:?}: the port must be 1 to 65535 or *"
                ));
            }
        },
    };
    let host = parse_host(host).ok_or_else(bad)?;
    Ok(Entry { host, ports })
}

/// `host[:port]`, where a bare IPv6 address has no port and a bracketed
/// one may.
fn split_port(entry: &str) -> Option<(&str, Option<&str>)> {
    if entry.parse::<IpAddr>().is_ok() {
        return Some((entry, None));
    }
    if entry.starts_with('[') {
        let end = entry.find(']')?;
        let (host, rest) = entry.split_at(end + 1);
        return match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        };
    }
    match entry.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => None,
        Some((host, port)) => Some((host, Some(port))),
        None => Some((entry, None)),
    }
}

fn parse_host(host: &str) -> Option<HostPattern> {
    if host == "*" {
        return Some(HostPattern::Any);
    }
    // One trailing dot is the DNS root; stripping it must not make `*.`
    // into `*`.
    let host = host.strip_suffix('.').unwrap_or(host);
    if let Some(inner) = host.strip_prefix('[') {
        let ip = inner.strip_suffix(']')?.parse::<IpAddr>().ok()?;
        return Some(HostPattern::Ip(canonical(ip)));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(HostPattern::Ip(canonical(ip)));
    }
    let (suffix, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    if !is_host_name(name) {
        return None;
    }
    Some(if suffix {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_or_are_named_in_the_error() {
        assert!(
            CallbackPolicy::new([
                "qa.example.com",
                "*.example.org",
                "10.0.0.5",
                "[::1]",
                "fd00::5",
                "*",
                "hooks.example.com:8443",
                "10.0.0.5:9000",
                "[fd00::5]:9000",
                "127.0.0.1:*",
                "*.example.net:*",
                "*:8080",
            ])
            .is_ok()
        );
        for bad in [
            "",
            "*.",
            "a..b",
            "http://x",
            "ex ample.com",
            "*foo.com",
            "host:",
            "host:0",
            "host:65536",
            "host:http",
            "[fd00::5]9000",
            "[fd00::5:9000",
            "a:b:c",
            ":80",
        ] {
            let e = CallbackPolicy::new([bad]).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn without_a_port_in_the_entry_only_80_and_443_are_allowed() {
        let p = CallbackPolicy::new(["hooks.example.com", "10.0.0.5", "*.example.org"]).unwrap();
        for ok in [
            "https://hooks.example.com/cb",
            "http://hooks.example.com/cb",
            "https://hooks.example.com:443/cb",
            "http://hooks.example.com:80/cb",
            "https://hooks.example.com:80/cb",
            "http://10.0.0.5/cb",
            "https://a.example.org/cb",
        ] {
            assert_eq!(p.allows(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://hooks.example.com:8080/cb",
            "https://hooks.example.com:22/",
            "http://10.0.0.5:9000/",
            "https://a.example.org:8443/",
        ] {
            assert_eq!(
                p.allows(bad),
                Err(
                    "port 8080 is not allowed: only 80 and 443 unless an allowlist entry \
                     names host:port"
                        .replace(
                            "8080",
                            &Url::parse(bad).unwrap().port().unwrap().to_string()
                        )
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_entry_with_a_port_allows_that_port_and_star_any() {
        let p = CallbackPolicy::new([
            "hooks.example.com:8443",
            "10.0.0.5:9000",
            "[fd00::5]:9000",
            "127.0.0.1:*",
        ])
        .unwrap();
        for ok in [
            "https://hooks.example.com:8443/cb",
            "http://10.0.0.5:9000/",
            "http://[fd00::5]:9000/",
            "http://127.0.0.1:1/",
            "http://127.0.0.1:65535/",
            "http://127.0.0.1/",
            "http://[::ffff:127.0.0.1]:4000/",
        ] {
            assert_eq!(p.allows(ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://hooks.example.com/cb",
            "https://hooks.example.com:8444/cb",
            "http://10.0.0.5/",
            "http://[fd00::5]:9001/",
        ] {
            assert!(
                p.allows(bad).unwrap_err().contains("is not allowed"),
                "{bad}"
            );
        }
        assert!(
            p.allows("http://[::1]:4000/")
                .unwrap_err()
                .contains("loopback")
        );
    }

    #[test]
    fn a_wildcard_with_a_port_still_refuses_internal_addresses() {
        let p = CallbackPolicy::new(["*:*"]).unwrap();
        assert_eq!(p.allows("https://hooks.example.com:8443/"), Ok(()));
        assert_eq!(p.allows("http://140.82.112.3:9000/"), Ok(()));
        for bad in [
            "http://169.254.169.254:8080/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/",
            "http://localhost:3000/",
        ] {
            assert!(p.allows(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_listed_internal_ip_allows_itself_as_a_resolved_address() {
        let p = CallbackPolicy::new(["hooks.example.com", "10.0.0.5:9000"]).unwrap();
        assert!(p.allows_resolved("140.82.112.3".parse().unwrap()));
        assert!(p.allows_resolved("10.0.0.5".parse().unwrap()));
        assert!(p.allows_resolved("::ffff:10.0.0.5".parse().unwrap()));
        assert!(!p.allows_resolved("10.0.0.6".parse().unwrap()));
        assert!(!p.allows_resolved("127.0.0.1".parse().unwrap()));
        assert!(!p.allows_resolved("64:ff9b::a00:5".parse().unwrap()));
    }
}
