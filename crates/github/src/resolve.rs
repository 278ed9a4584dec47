//! Resolving callback hosts ourselves: the reqwest resolver of the callback
//! client keeps only the addresses the allowlist permits, so the addresses
//! checked are the addresses connected to, with no DNS-rebinding window.

use crate::policy::CallbackPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long a dispatch-time check waits for DNS.
pub(crate) const VET_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the callback client waits for DNS; the request's own timeout
/// bounds the whole call as well.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A host name that may not be called, or could not be resolved. Messages
/// name the host, never the URL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("resolving host {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("resolving host {host}: no answer within {}s", .timeout.as_secs())]
    Timeout { host: String, timeout: Duration },
    #[error("host {host} resolves to no addresses")]
    NoAddresses { host: String },
    #[error(
        "host {host} resolves only to internal addresses ({addresses}); only an exact \
         allowlist entry allows them"
    )]
    OnlyInternal { host: String, addresses: String },
}

impl ResolveError {
    /// The allowlist, not the network, refused the host: retrying will not
    /// help.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, ResolveError::OnlyInternal { .. })
    }
}

/// Resolves `host` with the system resolver and keeps the addresses
/// `policy` lets previewd connect to (port 0: the URL's port is used).
pub(crate) async fn resolve_allowed(
    policy: &CallbackPolicy,
    host: &str,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let found: Vec<SocketAddr> = tokio::time::timeout(timeout, tokio::net::lookup_host((host, 0)))
        .await
        .map_err(|_| ResolveError::Timeout {
            host: host.to_owned(),
            timeout,
        })?
        .map_err(|source| ResolveError::Lookup {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = found
        .into_iter()
        .partition(|a| policy.allows_resolved(a.ip()));
    if !allowed.is_empty() {
        return Ok(allowed);
    }
    if refused.is_empty() {
        return Err(ResolveError::NoAddresses {
            host: host.to_owned(),
        });
    }
    let mut ips: Vec<IpAddr> = refused.iter().map(SocketAddr::ip).collect();
    ips.sort();
    ips.dedup();
    let addresses = ips
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Err(ResolveError::OnlyInternal {
        host: host.to_owned(),
        addresses,
    })
}

/// The callback client's resolver: [`resolve_allowed`] for every name it
/// connects to. (IP-literal URLs never reach a resolver; the allowlist's
/// literal check covers them.)
pub(crate) struct AllowlistResolver {
    policy: Arc<CallbackPolicy>,
}

impl AllowlistResolver {
    pub(crate) fn new(policy: CallbackPolicy) -> Self {
        AllowlistResolver {
            policy: Arc::new(policy),
        }
    }
}

impl Resolve for AllowlistResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_allowed(&policy, &host, RESOLVE_TIMEOUT).await?;
            tracing::debug!(host, addresses = addrs.len(), "callback host resolved");
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> CallbackPolicy {
        CallbackPolicy::new(entries).unwrap()
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_its_ip_is_listed() {
        let err = resolve_allowed(&policy(&["localhost"]), "localhost", VET_TIMEOUT)
            .await
            .unwrap_err();
        assert!(err.is_refusal(), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("host localhost resolves only to internal addresses (")
                && msg.contains("127.0.0.1")
                && msg.ends_with("only an exact allowlist entry allows them"),
            "{msg}"
        );

        let addrs = resolve_allowed(&policy(&["127.0.0.1"]), "localhost", VET_TIMEOUT)
            .await
            .unwrap();
        let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        assert_eq!(ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn the_resolver_hands_reqwest_only_allowed_addresses() {
        let r = AllowlistResolver::new(policy(&["127.0.0.1:*"]));
        let addrs: Vec<SocketAddr> = r
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, ["127.0.0.1:0".parse::<SocketAddr>().unwrap()]);

        let r = AllowlistResolver::new(policy(&["*"]));
        let err = r.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(
            err.to_string().contains("resolves only to internal"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unknown_name_is_a_lookup_error_naming_the_host() {
        let err = resolve_allowed(&policy(&["*"]), "no-such-host.invalid", VET_TIMEOUT)
            .await
            .unwrap_err();
        assert!(!err.is_refusal());
        assert!(
            err.to_string()
                .starts_with("resolving host no-such-host.invalid"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn vet_resolves_names_and_leaves_literals_to_the_syntactic_check() {
        let p = policy(&["localhost:*"]);
        let err = p
            .vet("http://localhost:8080/cb?token=s3cret")
            .await
            .unwrap_err();
        assert!(
            err.contains("host localhost resolves only to internal addresses"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");

        let p = policy(&["localhost:*", "127.0.0.1"]);
        assert_eq!(p.vet("http://localhost:8080/cb").await, Ok(()));
        assert_eq!(p.vet("http://127.0.0.1/cb").await, Ok(()));
        let err = p.vet("http://127.0.0.1:8080/cb").await.unwrap_err();
        assert!(err.starts_with("port 8080 is not allowed"), "{err}");
        assert!(p.vet("http://10.0.0.1/").await.is_err());
    }
}
