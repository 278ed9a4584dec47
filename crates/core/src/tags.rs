//! The ownership tags every previewd resource carries, and the test for
//! "is this ours?" that every destructive step must pass first.

use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "previewd:managed-by";
pub const PROJECT: &str = "previewd:project";
pub const BRANCH: &str = "previewd:branch";
pub const SLUG: &str = "previewd:slug";
pub const SPEC_HASH: &str = "previewd:spec-hash";

pub type Tags = BTreeMap<String, String>;

/// The tag value for a branch: AWS tag values allow only letters, digits,
/// spaces and `_ . : / = + - @`, so every other byte (and `=`, the escape
/// itself) becomes `=XX`. Cut to AWS's 256 characters, never mid-escape;
/// the slug tag, not this one, identifies the preview.
pub fn branch_tag_value(branch: &str) -> String {
    let mut v = String::with_capacity(branch.len());
    for b in branch.bytes() {
        let plain = b.is_ascii_alphanumeric() || b" _.:/+-@".contains(&b);
        let piece = if plain {
            (b as char).to_string()
        } else {
            format!("={b:02X}")
        };
        if v.len() + piece.len() > 256 {
            break;
        }
        v.push_str(&piece);
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
    format!("{}{slug}\"", marker_head(controller_id))
}

/// The slug a TXT record value marks as ours: the inverse of
/// [`dns_owner_marker`], `None` for any other value (another controller's
/// marker included).
pub fn dns_marker_slug<'a>(value: &'a str, controller_id: &str) -> Option<&'a str> {
    value
        .strip_prefix(&marker_head(controller_id))?
        .strip_suffix('"')
}

fn marker_head(controller_id: &str) -> String {
    format!("\"{MANAGED_BY}={controller_id};slug=")
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
    fn a_marker_names_its_slug_for_its_controller_only() {
        let marker = dns_owner_marker("ctl-a", "issue-42");
        assert_eq!(marker, "\"previewd:managed-by=ctl-a;slug=issue-42\"");
        assert_eq!(dns_marker_slug(&marker, "ctl-a"), Some("issue-42"));
        assert_eq!(dns_marker_slug(&marker, "ctl"), None);
        assert_eq!(dns_marker_slug(&marker, "ctl-b"), None);
        assert_eq!(dns_marker_slug("\"v=spf1 -all\"", "ctl-a"), None);
        let unquoted = marker.trim_end_matches('"');
        assert_eq!(dns_marker_slug(unquoted, "ctl-a"), None);
    }

    proptest::proptest! {
        #[test]
        fn every_marker_reads_back_as_its_slug(
            id in "[a-z0-9-]{1,20}",
            other in "[a-z0-9-]{1,20}",
            slug in "[a-z0-9-]{0,40}",
        ) {
            let marker = dns_owner_marker(&id, &slug);
            proptest::prop_assert_eq!(dns_marker_slug(&marker, &id), Some(slug.as_str()));
            if other != id {
                proptest::prop_assert_eq!(dns_marker_slug(&marker, &other), None);
            }
        }
    }

    #[test]
    fn branch_tag_is_aws_safe_and_bounded() {
        assert_eq!(branch_tag_value("qanote/issue-42"), "qanote/issue-42");
        assert_eq!(branch_tag_value("fix#12=ok!"), "fix=2312=3Dok=21");
        let long = branch_tag_value(&"#".repeat(255));
        assert!(long.len() <= 256 && long.ends_with("=23"));
        let aws_ok = |v: &str| {
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" _.:/=+-@".contains(&b))
        };
        assert!(aws_ok(&branch_tag_value("ümlaut/ß%~")));
    }
}
