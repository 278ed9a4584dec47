//! Previews for labelled pull requests (opt-in, `github.preview_label`):
//! what a pull-request webhook asks of a preview, decided from the change
//! and the labels alone, the way Argo CD's pull-request generator and
//! Heroku review apps decide it.
//!
//! # Guarantees
//! - With no watched label, no pull-request change deploys anything; a
//!   close still destroys (as it always has: a QA preview of the branch
//!   goes with its pull request).
//! - Only the watched label's own `labeled` / `unlabeled` starts or stops a
//!   preview; another label coming or going changes nothing.
//! - Label names compare as GitHub compares them: case-insensitively.

use crate::command::{Command, Expiry, Lifetime, Refusal, validate_commit};
use crate::key::PreviewKey;
use crate::model::{DeployRequest, PreviewSpec, Timestamp};
use crate::naming::NamingConfig;
use crate::ports::Delivery;

/// The `action` of a `pull_request` delivery, for the actions that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrChange {
    Opened,
    Reopened,
    /// A label was added (the delivery's top-level `label`).
    Labeled,
    /// A label was removed (the delivery's top-level `label`).
    Unlabeled,
    /// New commits on the head branch.
    Synchronize,
    Closed,
}

crate::model::text_enum!(PrChange {
    Opened = "opened",
    Reopened = "reopened",
    Labeled = "labeled",
    Unlabeled = "unlabeled",
    Synchronize = "synchronize",
    Closed = "closed",
});

impl PrChange {
    pub const ALL: [PrChange; 6] = [
        PrChange::Opened,
        PrChange::Reopened,
        PrChange::Labeled,
        PrChange::Unlabeled,
        PrChange::Synchronize,
        PrChange::Closed,
    ];
}

/// What a pull-request change asks of its head branch's preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrIntent {
    /// Deploy the head commit (create, or redeploy at a new commit).
    Deploy,
    /// Destroy the preview.
    Destroy,
    /// Nothing; why, for the webhook's answer and the log.
    Ignore(&'static str),
}

/// Decides what `change` asks of the preview. `labels` are the pull
/// request's labels after the change, `label` the one a `labeled` /
/// `unlabeled` delivery is about, `watched` the configured preview label.
pub fn intent(
    change: PrChange,
    labels: &[String],
    label: Option<&str>,
    watched: Option<&str>,
) -> PrIntent {
    if change == PrChange::Closed {
        return PrIntent::Destroy;
    }
    let Some(watched) = watched.filter(|w| !w.trim().is_empty()) else {
        return PrIntent::Ignore("previews for labelled pull requests are off");
    };
    let is_watched = |l: &str| l.eq_ignore_ascii_case(watched);
    match change {
        PrChange::Labeled | PrChange::Unlabeled if !label.is_some_and(is_watched) => {
            PrIntent::Ignore("another label changed")
        }
        PrChange::Labeled => PrIntent::Deploy,
        PrChange::Unlabeled => PrIntent::Destroy,
        PrChange::Opened | PrChange::Reopened | PrChange::Synchronize => {
            if labels.iter().any(|l| is_watched(l)) {
                PrIntent::Deploy
            } else {
                PrIntent::Ignore("the pull request does not carry the preview label")
            }
        }
        PrChange::Closed => PrIntent::Destroy,
    }
}

/// What is wrong with `label` as `github.preview_label`, if anything:
/// GitHub's label names are 1 to 50 characters, and a name of blanks or
/// control characters could never match one.
pub fn label_problem(label: &str) -> Option<&'static str> {
    if label.trim().is_empty() {
        return Some("must name a label (leave it unset to turn label previews off)");
    }
    if label.chars().count() > 50 {
        return Some("must be at most 50 characters, as GitHub's label names are");
    }
    if label.chars().any(char::is_control) {
        return Some("must not contain control characters");
    }
    None
}

/// A pull-request delivery's parts that decide its write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrWrite<'a> {
    /// The project this daemon serves (`previews.project`).
    pub project: &'a str,
    /// The head branch: the preview's key.
    pub branch: &'a str,
    /// The head commit: what a deploy deploys.
    pub head_sha: &'a str,
    /// `pull_request.updated_at` (`closed_at` for a close): a change older
    /// than the preview's current deploy is stale.
    pub event_at: Option<Timestamp>,
    pub delivery: Delivery,
    /// `pull_request.number`: where the sticky comment goes.
    pub number: u64,
}

/// The one-write-path command for `intent`, or `None` for
/// [`PrIntent::Ignore`]. A deploy deploys the head commit under the
/// project's key, named by `naming` and living for `lifetime`, like a
/// dispatch; the refusal names the delivery field that breaks a rule.
pub fn command(
    intent: &PrIntent,
    write: PrWrite<'_>,
    naming: &NamingConfig,
    lifetime: Lifetime,
) -> Result<Option<Command>, Refusal> {
    let key = || {
        PreviewKey::new(write.project, write.branch)
            .map_err(|e| Refusal::new("pull_request.head.ref", e.rule()))
    };
    match intent {
        PrIntent::Ignore(_) => Ok(None),
        PrIntent::Destroy => Ok(Some(Command::WebhookDestroy {
            key: key()?,
            delivery: write.delivery,
            event_at: write.event_at,
        })),
        PrIntent::Deploy => {
            let key = key()?;
            let commit = validate_commit(write.head_sha)
                .map_err(|r| Refusal::new("pull_request.head.sha", r.rule))?;
            Ok(Some(Command::WebhookDeploy {
                delivery: write.delivery,
                request: DeployRequest {
                    key,
                    spec: PreviewSpec {
                        commit_sha: Some(commit),
                        ..Default::default()
                    },
                    expiry: Expiry::Lifetime(lifetime),
                },
                naming: naming.clone(),
                event_at: write.event_at,
                pull_request: i64::try_from(write.number).ok(),
            }))
        }
    }
}

/// Whether a change that happened at `event_at` is older than the
/// preview's current deploy (`deployed_at`), and so must not touch it: a
/// late delivery of an older push must not roll a newer deploy back.
/// Without either time nothing is stale.
///
/// GitHub's times are whole seconds, so a change in the second of the
/// deploy cannot be told older: it is not stale (a push right after the
/// previous change's deploy must still deploy).
pub fn stale(event_at: Option<Timestamp>, deployed_at: Option<Timestamp>) -> bool {
    matches!((event_at, deployed_at), (Some(e), Some(d)) if e.timestamp() < d.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_label_flow_from_open_to_close() {
        let on = labels(&["preview", "bug"]);
        let w = Some("preview");
        assert_eq!(intent(PrChange::Opened, &on, None, w), PrIntent::Deploy);
        assert_eq!(
            intent(PrChange::Synchronize, &on, None, w),
            PrIntent::Deploy
        );
        assert_eq!(intent(PrChange::Closed, &on, None, w), PrIntent::Destroy);
        assert_eq!(
            intent(PrChange::Labeled, &on, Some("Preview"), w),
            PrIntent::Deploy,
            "GitHub label names are case-insensitive"
        );
        assert_eq!(
            intent(PrChange::Unlabeled, &labels(&["bug"]), Some("preview"), w),
            PrIntent::Destroy
        );
    }

    #[test]
    fn a_pull_request_without_the_label_gets_no_preview() {
        let off = labels(&["bug"]);
        let w = Some("preview");
        for change in [PrChange::Opened, PrChange::Reopened, PrChange::Synchronize] {
            assert!(matches!(intent(change, &off, None, w), PrIntent::Ignore(_)));
        }
        assert!(matches!(
            intent(PrChange::Labeled, &off, Some("bug"), w),
            PrIntent::Ignore(_)
        ));
    }

    fn change() -> impl Strategy<Value = PrChange> {
        prop::sample::select(PrChange::ALL.to_vec())
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["preview", "PREVIEW", "bug", "wip", "", " "])
            .prop_map(str::to_owned)
    }

    fn write(branch: &str, sha: &str) -> PrWrite<'static> {
        PrWrite {
            project: "acme/shop",
            branch: Box::leak(branch.to_owned().into_boxed_str()),
            head_sha: Box::leak(sha.to_owned().into_boxed_str()),
            event_at: None,
            delivery: Delivery::of_body("d-1", "pull_request", b"{}"),
            number: 7,
        }
    }

    fn lifetime() -> Lifetime {
        Lifetime {
            ttl: std::time::Duration::from_secs(3600),
            max_lifetime: std::time::Duration::from_secs(7200),
        }
    }

    #[test]
    fn a_deploy_deploys_the_head_commit_of_the_head_branch() {
        let naming = NamingConfig::default();
        let sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
        let Ok(Some(Command::WebhookDeploy { request, .. })) = command(
            &PrIntent::Deploy,
            write("changes", sha),
            &naming,
            lifetime(),
        ) else {
            panic!("no deploy")
        };
        assert_eq!(
            request.key,
            PreviewKey::new("acme/shop", "changes").unwrap()
        );
        assert_eq!(request.spec.commit_sha.as_deref(), Some(sha));
        let bad = command(
            &PrIntent::Deploy,
            write("changes", "zz"),
            &naming,
            lifetime(),
        );
        assert_eq!(bad.unwrap_err().field, "pull_request.head.sha");
        let bad = command(&PrIntent::Destroy, write("a..b", sha), &naming, lifetime());
        assert_eq!(bad.unwrap_err().field, "pull_request.head.ref");
        assert_eq!(
            command(
                &PrIntent::Ignore("x"),
                write("a..b", "zz"),
                &naming,
                lifetime()
            ),
            Ok(None)
        );
    }

    #[test]
    fn a_preview_label_is_a_label_github_could_have() {
        assert_eq!(label_problem("preview"), None);
        assert_eq!(label_problem("needs preview 🚀"), None);
        for bad in ["", "  ", "a\nb", &"x".repeat(51)] {
            assert!(label_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn a_change_in_the_second_of_the_deploy_is_not_stale() {
        let at = |ms| chrono::DateTime::from_timestamp_millis(ms);
        assert!(!stale(at(5_000), at(5_900)));
        assert!(stale(at(4_000), at(5_000)));
        assert!(!stale(None, at(5_000)) && !stale(at(5_000), None));
    }

    proptest! {
        #[test]
        fn stale_exactly_when_older_than_the_deploy(
            e in prop::option::of(0i64..10_000), d in prop::option::of(0i64..10_000),
        ) {
            // Milliseconds; whole seconds decide.
            let at = |ms: i64| chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap();
            let want = matches!((e, d), (Some(e), Some(d)) if e / 1000 < d / 1000);
            prop_assert_eq!(stale(e.map(at), d.map(at)), want);
        }

        #[test]
        fn the_command_follows_the_intent(
            c in change(), ls in prop::collection::vec(name(), 0..4), l in prop::option::of(name()),
        ) {
            let i = intent(c, &ls, l.as_deref(), Some("preview"));
            let cmd = command(&i, write("feature/x", "abc1234"), &NamingConfig::default(), lifetime()).unwrap();
            match (&i, cmd) {
                (PrIntent::Deploy, Some(Command::WebhookDeploy { .. }))
                | (PrIntent::Destroy, Some(Command::WebhookDestroy { .. }))
                | (PrIntent::Ignore(_), None) => {}
                (i, other) => prop_assert!(false, "{:?} built {:?}", i, other),
            }
        }
        #[test]
        fn with_no_watched_label_only_a_close_acts(
            c in change(), ls in prop::collection::vec(name(), 0..4), l in prop::option::of(name()),
        ) {
            for watched in [None, Some(""), Some("  ")] {
                let i = intent(c, &ls, l.as_deref(), watched);
                if c == PrChange::Closed {
                    prop_assert_eq!(i, PrIntent::Destroy);
                } else {
                    prop_assert!(matches!(i, PrIntent::Ignore(_)), "{:?} gave {:?}", c, i);
                }
            }
        }

        #[test]
        fn only_the_watched_label_starts_or_stops_a_preview(
            c in change(), ls in prop::collection::vec(name(), 0..4), l in prop::option::of(name()),
        ) {
            let i = intent(c, &ls, l.as_deref(), Some("preview"));
            let about_watched = l.as_deref().is_some_and(|l| l.eq_ignore_ascii_case("preview"));
            let carries = ls.iter().any(|x| x.eq_ignore_ascii_case("preview"));
            let want = match c {
                PrChange::Closed => PrIntent::Destroy,
                PrChange::Labeled if about_watched => PrIntent::Deploy,
                PrChange::Unlabeled if about_watched => PrIntent::Destroy,
                PrChange::Labeled | PrChange::Unlabeled => PrIntent::Ignore("another label changed"),
                _ if carries => PrIntent::Deploy,
                _ => PrIntent::Ignore("the pull request does not carry the preview label"),
            };
            prop_assert_eq!(i, want);
        }

        #[test]
        fn a_deploy_always_has_the_watched_label_on_or_coming(
            c in change(), ls in prop::collection::vec(name(), 0..4), l in prop::option::of(name()),
        ) {
            if intent(c, &ls, l.as_deref(), Some("preview")) == PrIntent::Deploy {
                let on = ls.iter().any(|x| x.eq_ignore_ascii_case("preview"));
                let coming = c == PrChange::Labeled
                    && l.as_deref().is_some_and(|l| l.eq_ignore_ascii_case("preview"));
                prop_assert!(on || coming);
            }
        }
    }
}
