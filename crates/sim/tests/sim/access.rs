//! Authenticate actions as AWS takes them: on HTTPS listeners only; OIDC
//! with its client secret unless the rule already holds one for that
//! client; reported back without the secret.

use crate::*;
use previewd_core::CloudError;
use previewd_core::access::{ClientSecret, Oidc, RuleAuth, Session};

fn oidc(client_id: &str) -> RuleAuth {
    RuleAuth::Oidc(Oidc {
        issuer: "https://idp.example.com".into(),
        authorization_endpoint: "https://idp.example.com/authorize".into(),
        token_endpoint: "https://idp.example.com/token".into(),
        user_info_endpoint: "https://idp.example.com/userinfo".into(),
        client_id: client_id.into(),
        session: Session::default(),
    })
}

fn protected(host: &str, client_id: &str, secret: Option<&str>) -> RuleSpec {
    RuleSpec {
        auth: Some(oidc(client_id)),
        client_secret: secret.map(ClientSecret::new),
        ..rule_spec(1000, host)
    }
}

async fn our_auth(sim: &Sim, arn: &str) -> Option<RuleAuth> {
    let state = sim.listener(LISTENER).await.unwrap();
    state.rules.into_iter().find(|r| r.arn == arn).unwrap().auth
}

#[tokio::test(start_paused = true)]
async fn an_oidc_rule_needs_its_secret_on_create_and_keeps_it_on_modify() {
    let sim = sim();
    let tg = sim.create_target_group(&tg_spec("pv-a")).await.unwrap().arn;
    let host = "a.preview.example.com";
    let refused = sim.create_rule(&protected(host, "web", None), &tg).await;
    assert!(
        matches!(refused, Err(CloudError::Invalid { .. })),
        "{refused:?}"
    );
    let arn = sim
        .create_rule(&protected(host, "web", Some("s3cr3t")), &tg)
        .await
        .unwrap();
    assert_eq!(our_auth(&sim, &arn).await, Some(oidc("web")));

    // The same client: AWS keeps the secret it holds.
    sim.modify_rule(&arn, &protected(host, "web", None), &tg)
        .await
        .unwrap();
    // Another client needs its own.
    let other = sim
        .modify_rule(&arn, &protected(host, "web-2", None), &tg)
        .await;
    assert!(
        matches!(other, Err(CloudError::Invalid { .. })),
        "{other:?}"
    );
    sim.modify_rule(&arn, &protected(host, "web-2", Some("other")), &tg)
        .await
        .unwrap();
    assert_eq!(our_auth(&sim, &arn).await, Some(oidc("web-2")));

    // Protection turned off: the same rule only forwards.
    sim.modify_rule(&arn, &rule_spec(1000, host), &tg)
        .await
        .unwrap();
    assert_eq!(our_auth(&sim, &arn).await, None);
}

#[tokio::test(start_paused = true)]
async fn an_authenticate_action_on_an_http_listener_is_refused_naming_it() {
    let sim = sim();
    sim.set_listener_http(LISTENER);
    let tg = sim.create_target_group(&tg_spec("pv-a")).await.unwrap().arn;
    let spec = protected("a.preview.example.com", "web", Some("s3cr3t"));
    let e = sim.create_rule(&spec, &tg).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("only supported on HTTPS listeners"), "{text}");
    assert!(text.contains(LISTENER), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    // Forwarding alone is fine there.
    sim.create_rule(&rule_spec(1000, "a.preview.example.com"), &tg)
        .await
        .unwrap();
}
