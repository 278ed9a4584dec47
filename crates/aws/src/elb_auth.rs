//! A preview rule's actions on the wire: `authenticate-oidc` or
//! `authenticate-cognito` at Order 1 (access protection), then `forward`.
//! What the rule carries is decided in `previewd_core::access`; this only
//! translates, both ways.

use aws_sdk_elasticloadbalancingv2::types as t;
use previewd_core::CloudError;
use previewd_core::access::{
    Cognito, DEFAULT_SCOPE, DEFAULT_SESSION_COOKIE_NAME, DEFAULT_SESSION_TIMEOUT_SECS, Oidc,
    OnUnauthenticated, RuleAction, RuleAuth, Session,
};
use previewd_core::ports::CloudResult;
use previewd_core::render::RuleSpec;

/// Whether the actions are for a `CreateRule` or a `ModifyRule`: only a
/// modify may keep the client secret AWS holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    Create,
    Modify,
}

/// The rule's actions, in the order `previewd_core::access::actions` gives.
pub(crate) fn actions(
    spec: &RuleSpec,
    target_group_arn: &str,
    write: Write,
) -> CloudResult<Vec<t::Action>> {
    spec.actions(target_group_arn)
        .into_iter()
        .map(|a| match a {
            RuleAction::Forward {
                order,
                target_group_arn,
            } => Ok(t::Action::builder()
                .r#type(t::ActionTypeEnum::Forward)
                .order(order)
                .target_group_arn(target_group_arn)
                .build()),
            RuleAction::Authenticate { order, auth } => authenticate(order, auth, spec, write),
        })
        .collect()
}

fn authenticate(
    order: i32,
    auth: &RuleAuth,
    spec: &RuleSpec,
    write: Write,
) -> CloudResult<t::Action> {
    let action = t::Action::builder().order(order);
    Ok(match auth {
        RuleAuth::Oidc(o) => {
            let s = &o.session;
            let config = t::AuthenticateOidcActionConfig::builder()
                .issuer(&o.issuer)
                .authorization_endpoint(&o.authorization_endpoint)
                .token_endpoint(&o.token_endpoint)
                .user_info_endpoint(&o.user_info_endpoint)
                .client_id(&o.client_id)
                .scope(&s.scope)
                .session_cookie_name(&s.cookie_name)
                .session_timeout(s.timeout_secs)
                .on_unauthenticated_request(s.on_unauthenticated.as_str().into());
            // AWS requires the secret on create; on modify, without one,
            // it keeps the secret it holds for this client.
            let config = match (&spec.client_secret, write) {
                (Some(secret), _) => config.client_secret(secret.expose()),
                (None, Write::Modify) => config.use_existing_client_secret(true),
                (None, Write::Create) => {
                    return Err(CloudError::Invalid {
                        code: "MissingClientSecret".into(),
                        message: format!(
                            "authenticate-oidc for client {} needs its client secret to create a rule",
                            o.client_id
                        ),
                    });
                }
            };
            action
                .r#type(t::ActionTypeEnum::AuthenticateOidc)
                .authenticate_oidc_config(config.build())
                .build()
        }
        RuleAuth::Cognito(c) => {
            let s = &c.session;
            let config = t::AuthenticateCognitoActionConfig::builder()
                .user_pool_arn(&c.user_pool_arn)
                .user_pool_client_id(&c.user_pool_client_id)
                .user_pool_domain(&c.user_pool_domain)
                .scope(&s.scope)
                .session_cookie_name(&s.cookie_name)
                .session_timeout(s.timeout_secs)
                .on_unauthenticated_request(s.on_unauthenticated.as_str().into())
                .build();
            action
                .r#type(t::ActionTypeEnum::AuthenticateCognito)
                .authenticate_cognito_config(config)
                .build()
        }
    })
}

/// The settings AWS reports, with its documented defaults where a field
/// is absent (DescribeRules omits what was never set).
fn session(
    scope: Option<&str>,
    cookie: Option<&str>,
    timeout: Option<i64>,
    on_unauthenticated: Option<&str>,
) -> Session {
    Session {
        scope: scope.unwrap_or(DEFAULT_SCOPE).to_owned(),
        cookie_name: cookie.unwrap_or(DEFAULT_SESSION_COOKIE_NAME).to_owned(),
        timeout_secs: timeout.unwrap_or(DEFAULT_SESSION_TIMEOUT_SECS),
        on_unauthenticated: on_unauthenticated
            .and_then(OnUnauthenticated::parse)
            .unwrap_or_default(),
    }
}

/// How an observed rule authenticates: its first authenticate action.
/// The client secret is never read, even where an endpoint echoes it.
pub(crate) fn auth_of(rule: &t::Rule) -> Option<RuleAuth> {
    let mut actions: Vec<&t::Action> = rule.actions().iter().collect();
    actions.sort_by_key(|a| a.order().unwrap_or(i32::MAX));
    actions.into_iter().find_map(|a| {
        if let Some(o) = a.authenticate_oidc_config() {
            return Some(RuleAuth::Oidc(Oidc {
                issuer: o.issuer().unwrap_or_default().to_owned(),
                authorization_endpoint: o.authorization_endpoint().unwrap_or_default().to_owned(),
                token_endpoint: o.token_endpoint().unwrap_or_default().to_owned(),
                user_info_endpoint: o.user_info_endpoint().unwrap_or_default().to_owned(),
                client_id: o.client_id().unwrap_or_default().to_owned(),
                session: session(
                    o.scope(),
                    o.session_cookie_name(),
                    o.session_timeout(),
                    o.on_unauthenticated_request().map(|b| b.as_str()),
                ),
            }));
        }
        let c = a.authenticate_cognito_config()?;
        Some(RuleAuth::Cognito(Cognito {
            user_pool_arn: c.user_pool_arn().unwrap_or_default().to_owned(),
            user_pool_client_id: c.user_pool_client_id().unwrap_or_default().to_owned(),
            user_pool_domain: c.user_pool_domain().unwrap_or_default().to_owned(),
            session: session(
                c.scope(),
                c.session_cookie_name(),
                c.session_timeout(),
                c.on_unauthenticated_request().map(|b| b.as_str()),
            ),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use previewd_core::access::ClientSecret;
    use previewd_core::tags::Tags;

    fn spec(auth: Option<RuleAuth>, secret: Option<&str>) -> RuleSpec {
        RuleSpec {
            priority: 1000,
            host: "h.example.com".into(),
            tags: Tags::new(),
            listener_arn: "arn:l".into(),
            auth,
            client_secret: secret.map(ClientSecret::new),
        }
    }

    fn oidc() -> RuleAuth {
        RuleAuth::Oidc(Oidc {
            issuer: "https://idp.example.com".into(),
            authorization_endpoint: "https://idp.example.com/a".into(),
            token_endpoint: "https://idp.example.com/t".into(),
            user_info_endpoint: "https://idp.example.com/u".into(),
            client_id: "web".into(),
            session: Session::default(),
        })
    }

    #[test]
    fn oidc_goes_first_with_its_secret_on_create_and_keeps_it_on_modify() {
        let create = actions(&spec(Some(oidc()), Some("s3")), "arn:tg", Write::Create).unwrap();
        assert_eq!(create.len(), 2);
        assert_eq!(create[0].order(), Some(1));
        assert_eq!(
            create[0].r#type(),
            Some(&t::ActionTypeEnum::AuthenticateOidc)
        );
        let c = create[0].authenticate_oidc_config().unwrap();
        assert_eq!(
            (c.client_secret(), c.use_existing_client_secret()),
            (Some("s3"), None)
        );
        assert_eq!(create[1].order(), Some(2));
        assert_eq!(create[1].target_group_arn(), Some("arn:tg"));

        let modify = actions(&spec(Some(oidc()), None), "arn:tg", Write::Modify).unwrap();
        let c = modify[0].authenticate_oidc_config().unwrap();
        assert_eq!(
            (c.client_secret(), c.use_existing_client_secret()),
            (None, Some(true))
        );

        let refused = actions(&spec(Some(oidc()), None), "arn:tg", Write::Create);
        assert!(matches!(refused, Err(CloudError::Invalid { .. })));
        assert!(!format!("{refused:?}").contains("s3"));
    }

    #[test]
    fn what_is_written_reads_back_the_same_without_the_secret() {
        let written = actions(&spec(Some(oidc()), Some("s3")), "arn:tg", Write::Create).unwrap();
        let rule = t::Rule::builder()
            .set_actions(Some(written.into_iter().rev().collect()))
            .build();
        assert_eq!(auth_of(&rule), Some(oidc()));
        let plain = t::Rule::builder()
            .actions(actions(&spec(None, None), "arn:tg", Write::Create).unwrap()[0].clone())
            .build();
        assert_eq!(auth_of(&plain), None);
    }

    #[test]
    fn absent_settings_read_as_aws_defaults() {
        let cognito = t::Action::builder()
            .r#type(t::ActionTypeEnum::AuthenticateCognito)
            .order(1)
            .authenticate_cognito_config(
                t::AuthenticateCognitoActionConfig::builder()
                    .user_pool_arn(
                        "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_a",
                    )
                    .user_pool_client_id("abc")
                    .user_pool_domain("previews")
                    .build(),
            )
            .build();
        let rule = t::Rule::builder().actions(cognito).build();
        let Some(RuleAuth::Cognito(c)) = auth_of(&rule) else {
            panic!()
        };
        assert_eq!(c.session, Session::default());
    }
}
