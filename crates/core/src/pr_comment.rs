//! The text of the sticky pull-request comment (`github.pr_comment`): one
//! comment per preview, found again by a hidden marker and rewritten on
//! every phase change.
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
use crate::outbox_report::Report;
use sha2::{Digest, Sha256};

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
    };
    let url = match (&r.url, r.phase) {
        (Some(u), Phase::Ready) => code(u, 512),
        (Some(_), Phase::Deleting | Phase::Deleted) => "gone".to_owned(),
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
    use crate::outbox_report::Action;
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

    proptest! {
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
