//! Authenticate actions on a rule (access protection), as AWS takes them.

use crate::world::{World, invalid};
use previewd_core::access::RuleAuth;
use previewd_core::ports::CloudResult;
use previewd_core::render::RuleSpec;

impl World {
    /// AWS's rules for an authenticate action: on an HTTPS listener only,
    /// and for OIDC with the client secret unless the rule holds one
    /// already (`needs_secret` false: `UseExistingClientSecret`).
    pub(crate) fn check_auth(
        &self,
        listener: &str,
        spec: &RuleSpec,
        needs_secret: bool,
    ) -> CloudResult<()> {
        let Some(auth) = &spec.auth else {
            return Ok(());
        };
        if self.elb.http_listeners.contains(listener) {
            return Err(invalid(
                "InvalidLoadBalancerAction",
                format!(
                    "{} is only supported on HTTPS listeners; listener '{listener}' is HTTP",
                    auth.action_type()
                ),
            ));
        }
        if matches!(auth, RuleAuth::Oidc(_))
            && needs_secret
            && spec.client_secret.as_ref().is_none_or(|s| s.is_empty())
        {
            return Err(invalid(
                "ValidationError",
                "AuthenticateOidcConfig.ClientSecret is required unless UseExistingClientSecret is true on a rule that has one",
            ));
        }
        Ok(())
    }
}
