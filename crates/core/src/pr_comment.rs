//! The sticky pull-request comment (`github.pr_comment`): whether one is
//! owed, what it says and what its delivery may do. One comment per
//! preview, found again by a hidden marker and rewritten on every phase
//! change; when the preview is gone it is edited to say so (not removed:
//! the pull request keeps the record, and a preview brought back edits the
//! same comment again).
//!
//! # Guarantees
//! - The marker is an HTML comment GitHub does not show, derived from the
//!   project and branch by a digest: a branch name (which git lets carry
//!   `>` and `--`) can neither break out of it nor make two previews share
//!   one.
//! - Everything that comes from outside (branch, commit, URL, message) is
//!   shown as inline code, so it cannot mention anyone, link anywhere or
//!   add markup.

use crate::Phase;
use crate::model::{OutboxKind, OutboxMessage};
use crate::outbox_report::{Action, Report};
use sha2::{Digest, Sha256};

/// The comment messages owed with a status write's `reports`: with the
/// comment on, one [`OutboxKind::Comment`] per report, carrying the same
/// report. They are queued in the same transaction as the reports, so a
/// phase change is never commented without being reported, or the reverse.
pub fn messages(enabled: bool, reports: &[OutboxMessage]) -> Vec<OutboxMessage> {
    if !enabled {
        return Vec::new();
    }
    reports
        .iter()
        .filter(|m| m.kind == OutboxKind::Report)
        .map(|m| OutboxMessage {
            kind: OutboxKind::Comment,
            payload: m.payload.clone(),
        })
        .collect()
}

/// What delivering one comment message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    /// The hidden marker the comment is found by.
    pub marker: String,
    /// The whole text of the comment; it carries the marker.
    pub body: String,
    /// A deploy's report may post the comment when none carries the
    /// marker yet; a destroy's only edits one: a pull request that never
    /// had a comment does not need one to hear that nothing is there.
    pub may_create: bool,
    /// The preview is gone: after this edit the pull request is forgotten,
    /// so a later preview of the branch looks up the pull request open then.
    pub forget_pull_request: bool,
}

/// What the comment of report `r` owes.
pub fn owed(r: &Report) -> Owed {
    Owed {
        marker: marker(&r.project, &r.branch),
        body: render(r),
        may_create: r.action == Action::Deploy,
        forget_pull_request: r.action == Action::Destroy && r.phase == Phase::Deleted,
    }
}

/// The hidden marker of `project`'s preview of `branch`.
pub fn marker(project: &str, branch: &str) -> String {
    let mut h = Sha256::new();
    h.update(project.as_bytes());
    h.update([0]);
    h.update(branch.as_bytes());
    let digest = hex::encode(h.finalize());
    format!("<!-- previewd:preview:{} -->", &digest[..32])
}

/// `s` as one inline code span: no line breaks, backticks replaced, `<`
/// and `>` shown as look-alikes (no HTML comment can open or close), a
/// table's `|` escaped (GitHub splits cells on it even inside code), and
/// at most `max` characters, so no outside text becomes markup.
fn code(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .take(max)
        .map(|c| match c {
            '`' => '\'',
            '<' => '‹',
            '>' => '›',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("`{}`", flat.trim().replace('|', "\\|"))
}

/// The comment for the preview a report describes.
pub fn render(r: &Report) -> String {
    let state = match r.phase {
        Phase::Pending => "⏳ Pending",
        Phase::Provisioning => "🔨 Provisioning",
        Phase::Ready => "✅ Ready",
        Phase::Failed => "❌ Failed",
        Phase::Deleting => "🧹 Deleting",
        Phase::Deleted => "🗑️ Deleted",
        Phase::Sleeping => "😴 Sleeping (a visit wakes it)",
    };
    // A destroyed preview's report may carry no URL any more; it is gone
    // either way.
    let url = match (&r.url, r.phase) {
        (_, Phase::Deleting | Phase::Deleted) => "gone".to_owned(),
        (Some(u), Phase::Ready | Phase::Sleeping) => code(u, 512),
        (Some(u), _) => format!("{} (not serving yet)", code(u, 512)),
        (None, _) => "—".to_owned(),
    };
    let commit = r
        .commit_sha
        .as_deref()
        .map(|c| code(c, 40))
        .unwrap_or_else(|| "—".into());
    let message = r
        .message
        .as_deref()
        .map(|m| code(m, 300))
        .unwrap_or_else(|| "—".into());
    format!(
        "{marker}\n**previewd preview** of {branch}\n\n\
         | | |\n|---|---|\n\
         | Phase | {state} |\n| URL | {url} |\n| Commit | {commit} |\n| Message | {message} |\n",
        marker = marker(&r.project, &r.branch),
        branch = code(&r.branch, 255),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn report(phase: Phase) -> Report {
        Report {
            project: "acme/shop".into(),
            branch: "qanote/issue-42".into(),
            generation: 2,
            action: Action::Deploy,
            phase,
            url: Some("https://issue-42-preview.preview.example.com".into()),
            message: Some("preview is ready".into()),
            commit_sha: Some("4f2a9c1".into()),
            ai_run_id: None,
            callback_url: None,
            superseded: None,
        }
    }

    #[test]
    fn a_ready_preview_shows_its_url_phase_commit_and_message() {
        let text = render(&report(Phase::Ready));
        assert!(text.starts_with(&marker("acme/shop", "qanote/issue-42")));
        for want in [
            "✅ Ready",
            "`https://issue-42-preview.preview.example.com`",
            "`4f2a9c1`",
            "`preview is ready`",
            "`qanote/issue-42`",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        let gone = render(&report(Phase::Deleted));
        assert!(
            gone.contains("🗑️ Deleted") && gone.contains("| URL | gone |"),
            "{gone}"
        );
    }

    #[test]
    fn markers_differ_per_project_and_branch() {
        let m = marker("acme/shop", "a");
        assert_ne!(m, marker("acme/shop", "b"));
        assert_ne!(m, marker("acme/shop2", "a"));
        assert_ne!(
            marker("a", "b/c"),
            marker("a/b", "c"),
            "the separator counts"
        );
    }

    fn message(kind: OutboxKind, r: &Report) -> OutboxMessage {
        OutboxMessage {
            kind,
            payload: serde_json::to_value(r).unwrap(),
        }
    }

    #[test]
    fn a_destroy_edits_the_comment_to_say_gone_and_then_forgets_the_pull_request() {
        let mut r = report(Phase::Ready);
        let o = owed(&r);
        assert!(o.may_create && !o.forget_pull_request, "{o:?}");
        assert!(o.body.starts_with(&o.marker));
        r.action = Action::Destroy;
        for phase in Phase::ALL {
            r.phase = phase;
            let o = owed(&r);
            assert!(!o.may_create, "a destroy never posts a comment");
            assert_eq!(o.forget_pull_request, phase == Phase::Deleted, "{phase}");
        }
        r.phase = Phase::Deleted;
        assert!(owed(&r).body.contains("| URL | gone |"));
        r.url = None;
        assert!(owed(&r).body.contains("| URL | gone |"), "with no URL left");
    }

    proptest! {
        #[test]
        fn each_report_owes_one_comment_with_the_same_report_when_enabled(
            phases in prop::collection::vec(0..Phase::ALL.len(), 0..6),
            others in 0..3usize,
            enabled in any::<bool>(),
        ) {
            let mut reports: Vec<OutboxMessage> = phases
                .iter()
                .map(|i| message(OutboxKind::Report, &report(Phase::ALL[*i])))
                .collect();
            for _ in 0..others {
                reports.push(message(OutboxKind::Other("digest".into()), &report(Phase::Ready)));
            }
            let owed = messages(enabled, &reports);
            if !enabled {
                prop_assert!(owed.is_empty());
            } else {
                prop_assert_eq!(owed.len(), phases.len());
                let wanted = reports.iter().filter(|m| m.kind == OutboxKind::Report);
                for (c, r) in owed.iter().zip(wanted) {
                    prop_assert_eq!(&c.kind, &OutboxKind::Comment);
                    prop_assert_eq!(&c.payload, &r.payload);
                }
            }
        }

        #[test]
        fn outside_text_never_escapes_its_code_span_or_the_marker(
            branch in ".{1,80}", message in ".{0,200}", url in ".{0,80}",
        ) {
            let mut r = report(Phase::Failed);
            r.branch = branch.clone();
            r.message = Some(message);
            r.url = Some(url);
            let text = render(&r);
            let m = marker(&r.project, &branch);
            prop_assert!(text.starts_with(&m));
            prop_assert_eq!(text.matches("<!--").count(), 1, "one marker, no other comment opened: {}", text);
            // Each table row keeps its two cells: no outside `|` or newline
            // splits it, since every outside value is inside backticks
            // with no backtick or line break of its own.
            for line in text.lines().skip(3) {
                let spans = line.matches('`').count();
                prop_assert_eq!(spans % 2, 0, "unbalanced code span in {:?}", line);
                let cells = line.replace("\\|", "").matches('|').count();
                prop_assert_eq!(cells, 3, "a row split into more cells: {:?}", line);
            }
            prop_assert_eq!(text.lines().count(), 9, "{}", text);
        }
    }
}
