//! Access protection (issue 18): a preview's listener rule authenticates
//! the visitor (`authenticate-oidc` or `authenticate-cognito`) before it
//! forwards, so a preview of unreleased code is not open to the internet.
//!
//! # Guarantees
//! - [`actions`] is the one description of a rule's actions: the
//!   authentication (when configured) first, at order 1, the forward
//!   after it. Sleep and wake change only the forward's target group.
//! - [`RuleAuth`] holds no secret and is what is compared for drift; the
//!   OIDC client secret travels beside it as a [`ClientSecret`], which
//!   never prints and never serializes.
//!
//! # Caveats
//! AWS never returns a client secret, so a secret rotated at the identity
//! provider for the same client id is not seen as drift (see
//! [`secret_to_send`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// AWS's defaults for the optional settings, spelled out so that what the
/// plan wants compares equal to what DescribeRules reports.
pub const DEFAULT_SCOPE: &str = "openid";
pub const DEFAULT_SESSION_COOKIE_NAME: &str = "AWSELBAuthSessionCookie";
pub const DEFAULT_SESSION_TIMEOUT_SECS: i64 = 604_800;

/// What the load balancer does with a visitor who has no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnUnauthenticated {
    /// Sends them to the identity provider (AWS's default).
    #[default]
    Authenticate,
    /// Answers 401.
    Deny,
    /// Lets them through without claims.
    Allow,
}

impl OnUnauthenticated {
    /// AWS's spelling (`OnUnauthenticatedRequest`).
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnauthenticated::Authenticate => "authenticate",
            OnUnauthenticated::Deny => "deny",
            OnUnauthenticated::Allow => "allow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authenticate" => Some(OnUnauthenticated::Authenticate),
            "deny" => Some(OnUnauthenticated::Deny),
            "allow" => Some(OnUnauthenticated::Allow),
            _ => None,
        }
    }
}

/// The settings every kind shares, with AWS's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Session {
    pub scope: String,
    pub cookie_name: String,
    pub timeout_secs: i64,
    pub on_unauthenticated: OnUnauthenticated,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            scope: DEFAULT_SCOPE.into(),
            cookie_name: DEFAULT_SESSION_COOKIE_NAME.into(),
            timeout_secs: DEFAULT_SESSION_TIMEOUT_SECS,
            on_unauthenticated: OnUnauthenticated::default(),
        }
    }
}

/// An OpenID Connect identity provider, without its client secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Oidc {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub user_info_endpoint: String,
    pub client_id: String,
    pub session: Session,
}

/// An Amazon Cognito user pool (the load balancer reads the app client's
/// secret from the pool itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cognito {
    pub user_pool_arn: String,
    pub user_pool_client_id: String,
    pub user_pool_domain: String,
    pub session: Session,
}

/// How a rule authenticates, as configured and as observed: no secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleAuth {
    Oidc(Oidc),
    Cognito(Cognito),
}

impl RuleAuth {
    /// AWS's action type.
    pub fn action_type(&self) -> &'static str {
        match self {
            RuleAuth::Oidc(_) => "authenticate-oidc",
            RuleAuth::Cognito(_) => "authenticate-cognito",
        }
    }

    /// Who authenticates, for logs, `config check` and the doctor: the
    /// issuer or user pool and the client id (never a secret).
    pub fn summary(&self) -> String {
        match self {
            RuleAuth::Oidc(o) => format!("oidc (issuer {}, client id {})", o.issuer, o.client_id),
            RuleAuth::Cognito(c) => format!(
                "cognito (user pool {}, client id {}, domain {})",
                c.user_pool_arn, c.user_pool_client_id, c.user_pool_domain
            ),
        }
    }

    /// Whether a rule authenticating as `self` already holds the client
    /// secret `other` wants: the same provider and the same client.
    fn same_client(&self, other: &RuleAuth) -> bool {
        match (self, other) {
            (RuleAuth::Oidc(a), RuleAuth::Oidc(b)) => {
                a.issuer == b.issuer && a.client_id == b.client_id
            }
            _ => false,
        }
    }
}

/// An OIDC client secret: never printed (Debug is redacted, there is no
/// Display), never serialized (the fields holding it are skipped).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientSecret(Arc<str>);

impl ClientSecret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The value, for the one request that sends it to AWS.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// A project's access protection: how its rules authenticate and, for
/// OIDC, the client secret (read from the environment or a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub auth: RuleAuth,
    #[serde(skip)]
    pub client_secret: Option<ClientSecret>,
}

/// One action of a preview's rule, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction<'a> {
    Authenticate {
        order: i32,
        auth: &'a RuleAuth,
    },
    Forward {
        order: i32,
        target_group_arn: &'a str,
    },
}

impl RuleAction<'_> {
    pub fn order(&self) -> i32 {
        match self {
            RuleAction::Authenticate { order, .. } | RuleAction::Forward { order, .. } => *order,
        }
    }
}

/// The actions of a preview's rule: authenticate (when configured) then
/// forward. AWS runs a rule's actions by their `Order`; the forward must
/// be last, and an authenticate action must come before it.
pub fn actions<'a>(auth: Option<&'a RuleAuth>, target_group_arn: &'a str) -> Vec<RuleAction<'a>> {
    let mut out = Vec::with_capacity(2);
    if let Some(auth) = auth {
        out.push(RuleAction::Authenticate { order: 1, auth });
    }
    let order = out.len() as i32 + 1;
    out.push(RuleAction::Forward {
        order,
        target_group_arn,
    });
    out
}

/// The secret a `ModifyRule` must send: none when the rule already
/// authenticates with the same OIDC provider and client (AWS keeps the
/// secret it holds: `UseExistingClientSecret`), the configured one when
/// the rule gains OIDC or changes client. A `CreateRule` always sends it
/// (AWS requires it), so the plan asks this only for a rule that exists.
pub fn secret_to_send(
    wanted: Option<&Access>,
    observed: Option<&RuleAuth>,
) -> Option<ClientSecret> {
    let wanted = wanted?;
    match (&wanted.auth, observed) {
        (RuleAuth::Cognito(_), _) => None,
        (w @ RuleAuth::Oidc(_), Some(o)) if o.same_client(w) => None,
        (RuleAuth::Oidc(_), _) => wanted.client_secret.clone(),
    }
}

/// Why a listener of the pool cannot carry the rules of the projects in
/// `protected` (those with access protection): AWS takes authenticate
/// actions on HTTPS listeners only, and would refuse every `CreateRule`.
/// `None` when it can. The doctor reports it; `serve` refuses to start.
pub fn plain_listener(listener_arn: &str, protocol: &str, protected: &[String]) -> Option<String> {
    if protected.is_empty() || protocol.eq_ignore_ascii_case("HTTPS") {
        return None;
    }
    Some(format!(
        "listener {listener_arn} is {protocol}, but {} {} previews with [access]: authenticate actions work only on HTTPS listeners; serve previews on an HTTPS listener (with a certificate for the preview domain), or turn [access] off",
        if protected.len() == 1 {
            "project"
        } else {
            "projects"
        },
        protected.join(", ")
            + if protected.len() == 1 {
                " protects its"
            } else {
                " protect their"
            },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(client_id: &str) -> Access {
        Access {
            auth: RuleAuth::Oidc(Oidc {
                issuer: "https://idp.example.com".into(),
                authorization_endpoint: "https://idp.example.com/authorize".into(),
                token_endpoint: "https://idp.example.com/token".into(),
                user_info_endpoint: "https://idp.example.com/userinfo".into(),
                client_id: client_id.into(),
                session: Session::default(),
            }),
            client_secret: Some(ClientSecret::new("s3cr3t-value")),
        }
    }

    #[test]
    fn a_plain_listener_is_refused_only_to_protected_projects_naming_both() {
        let l = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/p/1/2";
        let web = vec!["acme/web".to_owned()];
        let why = plain_listener(l, "HTTP", &web).unwrap();
        assert!(
            why.contains(l) && why.contains("acme/web") && why.contains("HTTP,"),
            "{why}"
        );
        assert!(why.contains("only on HTTPS listeners"), "{why}");
        assert_eq!(plain_listener(l, "HTTPS", &web), None);
        assert_eq!(plain_listener(l, "HTTP", &[]), None);
    }

    #[test]
    fn a_client_secret_never_prints() {
        let a = oidc("web");
        let debug = format!("{a:?} {:?}", a.client_secret);
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        let json = serde_json::to_string(&a).unwrap();
        assert!(!json.contains("s3cr3t-value"), "{json}");
    }

    #[test]
    fn authentication_comes_first_and_forward_last() {
        let a = oidc("web");
        let acts = actions(Some(&a.auth), "arn:tg");
        assert!(matches!(acts[0], RuleAction::Authenticate { order: 1, .. }));
        assert!(matches!(
            acts[1],
            RuleAction::Forward {
                order: 2,
                target_group_arn: "arn:tg"
            }
        ));
        assert_eq!(
            actions(None, "arn:tg"),
            [RuleAction::Forward {
                order: 1,
                target_group_arn: "arn:tg"
            }]
        );
    }

    #[test]
    fn the_secret_is_sent_only_when_aws_does_not_hold_it_already() {
        let a = oidc("web");
        assert_eq!(secret_to_send(Some(&a), Some(&a.auth)), None);
        assert!(secret_to_send(Some(&a), None).is_some());
        assert!(secret_to_send(Some(&a), Some(&oidc("api").auth)).is_some());
        assert_eq!(secret_to_send(None, Some(&a.auth)), None);
    }
}
