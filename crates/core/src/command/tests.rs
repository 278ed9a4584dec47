use super::*;
use crate::model::{PreviewSpec, Timestamp};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

const HOUR: Duration = Duration::from_secs(3600);

fn at(hours: i64) -> Timestamp {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap() + chrono::Duration::hours(hours)
}

fn lifetime() -> Lifetime {
    Lifetime {
        ttl: 72 * HOUR,
        max_lifetime: 14 * 24 * HOUR,
    }
}

fn inputs(action: &str, commit: Option<&str>) -> DispatchRequest {
    DispatchRequest {
        action: action.into(),
        branch: "qanote/issue-42".into(),
        commit_sha: commit.map(Into::into),
        ..Default::default()
    }
}

fn build(req: &DispatchRequest) -> Result<Command, Refusal> {
    req.command("acme/shop", &NamingConfig::default(), lifetime())
}

fn row(created: Timestamp, phase: Phase) -> Preview {
    let key = PreviewKey::new("acme/shop", "qanote/issue-42").unwrap();
    let mut p = Preview::fresh(
        key,
        "qanote-issue-42",
        "issue-42-preview",
        PreviewSpec::default(),
        created,
    );
    p.status.phase = phase;
    p
}

#[test]
fn a_deploy_is_built_with_a_lowercase_sha_and_expires_by_the_lifetime() {
    let mut req = inputs("deploy", Some(" ABC1234 "));
    req.ai_run_id = Some("".into());
    req.callback_url = Some("https://qa.example.com/done".into());
    let Command::Deploy { request, naming } = build(&req).unwrap() else {
        panic!("not a deploy");
    };
    assert_eq!(request.key.branch, "qanote/issue-42");
    assert_eq!(request.spec.commit_sha.as_deref(), Some("abc1234"));
    assert_eq!(request.spec.ai_run_id, None, "an empty input is absent");
    assert_eq!(
        request.spec.callback_url.as_deref(),
        Some("https://qa.example.com/done")
    );
    assert_eq!(request.expiry, Expiry::Lifetime(lifetime()));
    assert_eq!(naming, NamingConfig::default());
}

#[test]
fn a_destroy_needs_only_the_branch() {
    let cmd = build(&inputs("destroy", None)).unwrap();
    assert_eq!(cmd, Command::Destroy(cmd.key().clone()));
    assert_eq!(cmd.callback_url(), None);
}

#[test]
fn a_destroy_with_its_own_run_and_callback_carries_them_vetted_like_a_deploys() {
    let mut req = inputs("destroy", None);
    req.ai_run_id = Some(" run-9 ".into());
    req.callback_url = Some("https://qa.example.com/gone".into());
    let cmd = build(&req).unwrap();
    assert_eq!(
        cmd,
        Command::DestroyFor {
            key: cmd.key().clone(),
            report_to: ReportTo {
                ai_run_id: Some("run-9".into()),
                callback_url: Some("https://qa.example.com/gone".into()),
            },
        }
    );
    assert_eq!(cmd.callback_url(), Some("https://qa.example.com/gone"));
    req.callback_url = Some("ftp://x".into());
    assert_eq!(build(&req).unwrap_err().field, "callback_url");
}

#[test]
fn each_broken_rule_names_its_input() {
    let field = |req: DispatchRequest| build(&req).unwrap_err().field;
    assert_eq!(field(inputs("deploy", None)), "commit_sha");
    assert_eq!(field(inputs("deploy", Some("  "))), "commit_sha");
    assert_eq!(field(inputs("deploy", Some("xyz1234"))), "commit_sha");
    assert_eq!(field(inputs("redeploy", Some("abc1234"))), "action");
    let mut bad_branch = inputs("destroy", None);
    bad_branch.branch = "a\u{200b}b".into();
    assert_eq!(field(bad_branch), "branch");
    let mut bad_callback = inputs("deploy", Some("abc1234"));
    bad_callback.callback_url = Some("ftp://x".into());
    assert_eq!(field(bad_callback), "callback_url");
    let mut bad_run = inputs("deploy", Some("abc1234"));
    bad_run.ai_run_id = Some("run\n9".into());
    assert_eq!(field(bad_run), "ai_run_id");
    let refusal = build(&inputs("deploy", None)).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "commit_sha: is required for action \"deploy\""
    );
}

#[test]
fn a_redeploy_keeps_the_creation_cap_but_a_deleted_row_starts_a_new_lifetime() {
    let now = at(13 * 24);
    let live = row(at(0), Phase::Ready);
    // Created 13 days ago: one day of the fourteen is left, not 72 hours.
    assert_eq!(lifetime().expires_at(Some(&live), now), Some(at(14 * 24)));
    let deleted = row(at(0), Phase::Deleted);
    assert_eq!(
        lifetime().expires_at(Some(&deleted), now),
        Some(now + chrono::Duration::hours(72))
    );
    assert_eq!(
        lifetime().expires_at(None, now),
        Some(now + chrono::Duration::hours(72))
    );
}

#[test]
fn a_fixed_expiry_ignores_the_row() {
    let live = row(at(0), Phase::Ready);
    assert_eq!(Expiry::At(at(1)).resolve(Some(&live), at(5)), Some(at(1)));
    assert_eq!(Expiry::Never.resolve(Some(&live), at(5)), None);
    assert_eq!(Expiry::from(Some(at(2))), Expiry::At(at(2)));
    assert_eq!(Expiry::from(None), Expiry::Never);
}

#[test]
fn only_a_changed_row_counts_as_changed() {
    let out = |changed| {
        Effect::Applied(Some(ApplyOutcome {
            preview: row(at(0), Phase::Ready),
            changed,
        }))
    };
    assert!(out(true).changed());
    assert!(!out(false).changed());
    assert!(!Effect::Applied(None).changed());
    assert!(!Effect::Duplicate.changed());
    assert!(!Effect::Stale.changed());
    assert!(Effect::Stale.outcome().is_none());
    assert!(out(false).into_outcome().is_some());
}

fn phase() -> impl Strategy<Value = Phase> {
    proptest::sample::select(Phase::ALL.to_vec())
}

fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        "\\PC{0,12}",
        "[0-9a-fA-F]{0,44}",
        Just("https://qa.example.com/x".to_string()),
        Just(" ".to_string()),
    ])
}

proptest! {
    /// The expiry never outruns the ttl from now nor the cap from the
    /// lifetime's start, and a Deleted row is as good as none.
    #[test]
    fn the_expiry_respects_both_bounds(
        created_h in 0i64..1000,
        since_h in 0i64..1000,
        ttl_h in 1u64..500,
        max_h in 1u64..1000,
        phase in phase(),
    ) {
        let lifetime = Lifetime { ttl: ttl_h as u32 * HOUR, max_lifetime: max_h as u32 * HOUR };
        let now = at(created_h + since_h);
        let p = row(at(created_h), phase);
        let got = lifetime.expires_at(Some(&p), now).unwrap();
        let hours = |h: u64| chrono::Duration::hours(h as i64);
        prop_assert!(got <= now + hours(ttl_h));
        let start = if phase == Phase::Deleted { now } else { p.created_at };
        prop_assert!(got <= start + hours(max_h));
        prop_assert!(got == (now + hours(ttl_h)).min(start + hours(max_h)));
        if phase == Phase::Deleted {
            prop_assert_eq!(Some(got), lifetime.expires_at(None, now));
        }
    }

    /// Whatever the inputs, a command is well formed or the refusal names
    /// one of the contract's inputs.
    #[test]
    fn any_inputs_build_a_well_formed_command_or_name_the_input(
        action in prop_oneof![Just("deploy".to_string()), Just("destroy".to_string()), "\\PC{0,8}"],
        branch in prop_oneof![Just("qanote/issue-1".to_string()), "\\PC{0,20}"],
        ai_run_id in text(),
        callback_url in text(),
        commit_sha in text(),
    ) {
        let req = DispatchRequest { action, branch, ai_run_id, callback_url, commit_sha, project: None };
        match build(&req) {
            Ok(Command::Deploy { request, .. }) => {
                prop_assert_eq!(req.action.as_str(), "deploy");
                let sha = request.spec.commit_sha.unwrap();
                prop_assert!(sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                prop_assert!((7..=40).contains(&sha.len()));
            }
            Ok(Command::Destroy(key)) => prop_assert_eq!(&key.branch, &req.branch),
            Ok(Command::DestroyFor { key, report_to }) => {
                prop_assert_eq!(&key.branch, &req.branch);
                prop_assert!(report_to != ReportTo::default());
                prop_assert_eq!(report_to.ai_run_id.as_deref(), req.ai_run_id.as_deref().map(str::trim).filter(|s| !s.is_empty()));
            }
            Ok(other) => prop_assert!(false, "inputs built {:?}", other),
            Err(refusal) => {
                let inputs = ["action", "branch", "project", "ai_run_id", "callback_url", "commit_sha"];
                prop_assert!(inputs.contains(&refusal.field.as_str()), "{:?}", refusal);
                prop_assert!(!refusal.rule.is_empty());
            }
        }
    }
}

fn spec(commit: &str) -> PreviewSpec {
    PreviewSpec {
        commit_sha: Some(commit.into()),
        ..Default::default()
    }
}

#[test]
fn an_identical_deploy_retries_only_a_failure_of_the_current_generation() {
    let mut p = row(at(0), Phase::Failed);
    p.spec = spec("abc1234");
    p.status.observed_generation = p.generation;
    assert_eq!(deploy_step(None, &p.spec), DeployStep::Insert);
    assert_eq!(deploy_step(Some(&p), &p.spec), DeployStep::Redeploy);
    // The retry is under way (generation 2, Failed still about 1).
    p.generation = 2;
    assert_eq!(deploy_step(Some(&p), &p.spec), DeployStep::Unchanged);
    p.status.phase = Phase::Ready;
    p.status.observed_generation = 2;
    assert_eq!(deploy_step(Some(&p), &p.spec), DeployStep::Unchanged);
    assert_eq!(
        deploy_step(Some(&p), &spec("def5678")),
        DeployStep::Redeploy
    );
}

proptest! {
    /// A deploy writes exactly when the spec changes, the preview was
    /// destroyed, or it retries a Failed current generation; a row is
    /// inserted only when there is none.
    #[test]
    fn a_deploy_writes_exactly_when_something_asks_for_a_new_attempt(
        phase in phase(),
        absent in any::<bool>(),
        behind in 0i64..3,
        same in any::<bool>(),
    ) {
        let mut p = row(at(0), phase);
        p.spec = spec("abc1234");
        p.generation = 1 + behind;
        p.status.observed_generation = 1;
        if absent {
            p.desired = Desired::Absent;
        }
        let asked = if same { p.spec.clone() } else { spec("def5678") };
        let retry = phase == Phase::Failed && behind == 0;
        let expected = if !absent && same && !retry {
            DeployStep::Unchanged
        } else {
            DeployStep::Redeploy
        };
        prop_assert_eq!(deploy_step(Some(&p), &asked), expected);
        prop_assert_eq!(deploy_step(None, &asked), DeployStep::Insert);
    }
}
