//! Access protection as plans: the rule authenticates before it forwards,
//! and no redeploy, sleep or wake drops that; a changed configuration is
//! repaired in place and converges.

use super::*;
use crate::access::{Access, ClientSecret, Cognito, Oidc, RuleAction, RuleAuth, Session};

const WAKER: &str = "arn:tg/previewd-waker";
const SECRET: &str = "a-known-client-secret";

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
        client_secret: Some(ClientSecret::new(SECRET)),
    }
}

fn cognito() -> Access {
    Access {
        auth: RuleAuth::Cognito(Cognito {
            user_pool_arn: "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc"
                .into(),
            user_pool_client_id: "abc123".into(),
            user_pool_domain: "previews".into(),
            session: Session::default(),
        }),
        client_secret: None,
    }
}

/// The configurations a project may switch between (`None`: off).
fn arb_access() -> impl Strategy<Value = Option<Access>> {
    prop_oneof![
        Just(None),
        Just(Some(oidc("web"))),
        Just(Some(oidc("web-2"))),
        Just(Some(cognito())),
    ]
}

fn with_access(access: Option<Access>) -> (Template, Preview, Wanted) {
    let (mut t, p, _) = setup(Desired::Present);
    t.access = access;
    let w = render(&t, &p);
    (t, p, w)
}

/// The rule changes of a plan: (modify?, spec, target).
fn rule_changes(plan: &Plan) -> Vec<(bool, &RuleSpec, Option<&str>)> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            Change::CreateRule {
                spec,
                target_group_arn,
            } => Some((false, spec, target_group_arn.as_deref())),
            Change::ModifyRule {
                spec,
                target_group_arn,
                ..
            } => Some((true, spec, target_group_arn.as_deref())),
            _ => None,
        })
        .collect()
}

/// AWS after the plan's changes to the rule and the service.
fn apply(o: &mut Observation, plan: &Plan) {
    for c in &plan.changes {
        match c {
            Change::ModifyRule {
                arn,
                spec,
                target_group_arn,
            } => {
                let r = o.listener.rules.iter_mut().find(|r| &r.arn == arn).unwrap();
                r.hosts = vec![spec.host.clone()];
                r.target_group_arn = target_group_arn.clone();
                r.auth = spec.auth.clone();
            }
            Change::UpdateService { desired_count, .. } => {
                let s = o.service.as_mut().unwrap();
                s.desired_count = *desired_count;
                s.running_count = *desired_count;
                s.deployments[0].desired_count = *desired_count;
                s.deployments[0].running_count = *desired_count;
            }
            _ => {}
        }
    }
}

#[test]
fn a_new_rule_authenticates_then_forwards_and_carries_the_secret() {
    let (t, p, w) = with_access(Some(oidc("web")));
    let plan = plan(&t, &p, &w, &Observation::default(), &BTreeSet::new());
    let [(false, spec, None)] = rule_changes(&plan)[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(spec.auth, Some(oidc("web").auth));
    assert_eq!(spec.client_secret, Some(ClientSecret::new(SECRET)));
    let acts = spec.actions("arn:tg/x");
    assert!(matches!(
        acts[..],
        [
            RuleAction::Authenticate { order: 1, .. },
            RuleAction::Forward { order: 2, .. }
        ]
    ));
    // The plan prints, the secret does not.
    assert!(!format!("{plan:?}").contains(SECRET));
}

#[test]
fn a_rule_without_its_auth_is_modified_in_place_with_the_secret() {
    let (t, p, w) = with_access(Some(oidc("web")));
    let plan = plan(&t, &p, &w, &converged(&w), &BTreeSet::new());
    assert_eq!(names(&plan), ["ModifyRule"]);
    let [(true, spec, _)] = rule_changes(&plan)[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(spec.auth, Some(oidc("web").auth));
    assert!(spec.client_secret.is_some(), "AWS holds no secret yet");
}

#[test]
fn a_protected_rule_as_configured_is_ready_and_untouched() {
    let (t, p, w) = with_access(Some(oidc("web")));
    let mut o = converged(&w);
    o.listener.rules[0].auth = Some(oidc("web").auth);
    assert_eq!(
        plan(&t, &p, &w, &o, &BTreeSet::new()),
        Plan::done(Verdict::Ready)
    );
}

#[test]
fn auth_present_where_none_is_configured_is_removed_in_place() {
    let (t, p, w) = with_access(None);
    let mut o = converged(&w);
    o.listener.rules[0].auth = Some(cognito().auth);
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    let [(true, spec, _)] = rule_changes(&plan)[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(spec.auth, None);
    assert_eq!(spec.client_secret, None);
}

#[test]
fn sleeping_keeps_the_auth_and_aws_keeps_the_secret_it_holds() {
    let (t, mut p, w) = with_access(Some(oidc("web")));
    p.status.phase = Phase::Ready;
    p.status.observed_generation = p.generation;
    p.asleep = true;
    let mut o = converged(&w);
    o.listener.waker_target_group = Some(WAKER.into());
    o.listener.rules[0].auth = Some(oidc("web").auth);
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    let [(true, spec, Some(WAKER))] = rule_changes(&plan)[..] else {
        panic!("{plan:?}")
    };
    assert_eq!(spec.auth, Some(oidc("web").auth));
    assert_eq!(spec.client_secret, None, "UseExistingClientSecret");
}

proptest! {
    /// Whatever AWS shows and whatever sleep state the row is in, every
    /// rule the plan writes carries the configured auth before its
    /// forward, a create always with the secret, a modify with it only
    /// when AWS does not hold it for that client already.
    #[test]
    fn every_rule_written_carries_the_configured_auth_first(
        access in arb_access(),
        observed in arb_access(),
        mut o in arb_observation(&setup(Desired::Present).2),
        (asleep, on_waker, redeploy) in any::<(bool, bool, bool)>(),
    ) {
        let (t, mut p, w) = with_access(access.clone());
        p.status.phase = Phase::Ready;
        p.status.observed_generation = p.generation;
        if redeploy {
            p.generation += 1;
            p.spec.commit_sha = Some("def456".into());
        }
        p.asleep = asleep;
        o.listener.waker_target_group = Some(WAKER.into());
        if let Some(r) = o.listener.rules.first_mut() {
            r.auth = observed.as_ref().map(|a| a.auth.clone());
            if on_waker {
                r.target_group_arn = Some(WAKER.into());
            }
        }
        let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
        let wanted = access.as_ref().map(|a| a.auth.clone());
        for (modify, spec, target) in rule_changes(&plan) {
            prop_assert_eq!(&spec.auth, &wanted);
            let acts = spec.actions(target.unwrap_or("arn:tg/new"));
            prop_assert!(acts.windows(2).all(|w| w[0].order() < w[1].order()));
            let forwards_last = matches!(acts.last(), Some(RuleAction::Forward { .. }));
            prop_assert!(forwards_last);
            prop_assert_eq!(acts.len(), 1 + usize::from(wanted.is_some()));
            let is_oidc = matches!(wanted, Some(RuleAuth::Oidc(_)));
            let aws_holds_it = observed == access;
            if !modify {
                prop_assert_eq!(spec.client_secret.is_some(), is_oidc);
            } else {
                prop_assert_eq!(spec.client_secret.is_some(), is_oidc && !aws_holds_it, "{:?} -> {:?}", observed, access);
            }
        }
    }

    /// A project's access switched from anything to anything: one pass
    /// modifies the same rule, and the pass after it changes no rule; then
    /// a sleep and a wake keep it as configured.
    #[test]
    fn toggling_access_converges_in_place_and_survives_sleep_and_wake(
        from in arb_access(),
        to in arb_access(),
    ) {
        let (t, mut p, w) = with_access(to.clone());
        p.status.phase = Phase::Ready;
        p.status.observed_generation = p.generation;
        let mut o = converged(&w);
        o.listener.waker_target_group = Some(WAKER.into());
        o.listener.rules[0].auth = from.as_ref().map(|a| a.auth.clone());
        let wanted = to.as_ref().map(|a| a.auth.clone());

        let first = plan(&t, &p, &w, &o, &BTreeSet::new());
        prop_assert_eq!(rule_changes(&first).len(), usize::from(from != to));
        apply(&mut o, &first);
        let again = plan(&t, &p, &w, &o, &BTreeSet::new());
        prop_assert_eq!(&again, &Plan::done(Verdict::Ready));

        // Sleep, then wake: the rule moves, its auth stays.
        p.asleep = true;
        for _ in 0..2 {
            let step = plan(&t, &p, &w, &o, &BTreeSet::new());
            apply(&mut o, &step);
        }
        prop_assert_eq!(o.listener.rules[0].target_group_arn.as_deref(), Some(WAKER));
        prop_assert_eq!(&o.listener.rules[0].auth, &wanted);
        p.asleep = false;
        for _ in 0..3 {
            let step = plan(&t, &p, &w, &o, &BTreeSet::new());
            apply(&mut o, &step);
        }
        prop_assert_eq!(o.listener.rules.len(), 1);
        prop_assert_eq!(o.listener.rules[0].arn.as_str(), "arn:rule/ours");
        prop_assert_ne!(o.listener.rules[0].target_group_arn.as_deref(), Some(WAKER));
        prop_assert_eq!(&o.listener.rules[0].auth, &wanted);
        prop_assert_eq!(plan(&t, &p, &w, &o, &BTreeSet::new()), Plan::done(Verdict::Ready));
    }
}
