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

    proptest! {
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
