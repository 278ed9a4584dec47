//! Access protection in the plan: what the preview's rule must carry
//! before its forward, and when an observed rule has drifted from it.

use crate::access::{self, ClientSecret, RuleAuth};
use crate::observed::ObservedRule;
use crate::render::Template;

/// The authentication a rule of `t`'s project wants (`None`: forward only).
pub(super) fn wanted(t: &Template) -> Option<RuleAuth> {
    t.access.as_ref().map(|a| a.auth.clone())
}

/// Whether `rule` authenticates otherwise than `t` wants: no auth where
/// it is configured, another provider, client, pool or session setting,
/// or auth where none is configured. Any of these is repaired in place.
pub(super) fn drifted(t: &Template, rule: &ObservedRule) -> bool {
    rule.auth.as_ref() != t.access.as_ref().map(|a| &a.auth)
}

/// The client secret the `ModifyRule` of `rule` sends
/// ([`access::secret_to_send`]).
pub(super) fn secret_for_modify(t: &Template, rule: &ObservedRule) -> Option<ClientSecret> {
    access::secret_to_send(t.access.as_ref(), rule.auth.as_ref())
}

/// The client secret a `CreateRule` sends: always, for OIDC.
pub(super) fn secret_for_create(t: &Template) -> Option<ClientSecret> {
    t.access
        .as_ref()
        .filter(|a| matches!(a.auth, RuleAuth::Oidc(_)))
        .and_then(|a| a.client_secret.clone())
}
