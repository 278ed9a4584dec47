//! The ownership tags every previewd resource carries, and the test for
//! "is this ours?" that every destructive step must pass first.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "previewd:managed-by";
pub const PROJECT: &str = "previewd:project";
pub const BRANCH: &str = "previewd:branch";
pub const SLUG: &str = "previewd:slug";
pub const SPEC_HASH: &str = "previewd:spec-hash";

/// Characters AWS tag values accept besides letters and digits; everything
/// else in a branch name is percent-encoded so the tag is always valid.
const TAG_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'/')
    .remove(b'=')
    .remove(b'+')
    .remove(b'-')
    .remove(b'@')
    .remove(b':');

pub type Tags = BTreeMap<String, String>;

/// The tag value for a branch: AWS-safe and at most 256 characters (the
/// slug tag, not this one, is what identifies the preview).
pub fn branch_tag_value(branch: &str) -> String {
    let mut v = utf8_percent_encode(branch, TAG_SAFE).to_string();
    if v.len() > 256 {
        v.truncate(256);
        // Never leave half an escape behind.
        if let Some(pos) = v[v.len().saturating_sub(2)..].find('%') {
            v.truncate(v.len() - 2 + pos);
        }
    }
    v
}

/// The tags for one preview's resources.
pub fn ownership_tags(
    controller_id: &str,
    project: &str,
    branch: &str,
    slug: &str,
    spec_hash: Option<&str>,
) -> Tags {
    let mut t = Tags::new();
    t.insert(MANAGED_BY.into(), controller_id.into());
    t.insert(PROJECT.into(), project.into());
    t.insert(BRANCH.into(), branch_tag_value(branch));
    t.insert(SLUG.into(), slug.into());
    if let Some(h) = spec_hash {
        t.insert(SPEC_HASH.into(), h.into());
    }
    t
}

/// True only when the resource carries our controller id. Everything that
/// deletes or modifies must ask this first.
pub fn is_owned(tags: &Tags, controller_id: &str) -> bool {
    tags.get(MANAGED_BY).map(String::as_str) == Some(controller_id)
}

/// The slug a resource of ours belongs to.
pub fn owner_slug<'a>(tags: &'a Tags, controller_id: &str) -> Option<&'a str> {
    if is_owned(tags, controller_id) {
        tags.get(SLUG).map(String::as_str)
    } else {
        None
    }
}

/// The TXT record value that marks a DNS name as ours (Route53 records
/// carry no tags).
pub fn dns_owner_marker(controller_id: &str, slug: &str) -> String {
    format!("\"previewd:managed-by={controller_id};slug={slug}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_resources_are_never_owned() {
        let mut t = ownership_tags("ctl-a", "acme/shop", "main", "main", None);
        assert!(is_owned(&t, "ctl-a"));
        assert!(!is_owned(&t, "ctl-b"));
        t.remove(MANAGED_BY);
        assert!(!is_owned(&t, "ctl-a"));
        assert_eq!(owner_slug(&t, "ctl-a"), None);
    }

    #[test]
    fn branch_tag_is_aws_safe_and_bounded() {
        assert_eq!(branch_tag_value("qanote/issue-42"), "qanote/issue-42");
        assert_eq!(branch_tag_value("a#b!"), "a%23b%21");
        let long = branch_tag_value(&"#".repeat(255));
        assert!(long.len() <= 256 && !long.ends_with('%'));
    }
}
