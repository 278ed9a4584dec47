//! Every AWS name a preview uses, derived from its stored slug.
//!
//! # Guarantees
//! - A slug is `[a-z0-9-]`, 1..=40 chars, no leading, trailing or doubled `-`.
//! - Slugs are allocated once per branch by the store, which takes the first
//!   of [`slug_candidates`] that no other row holds; names are then pure
//!   functions of the slug, so two rows never share a resource name.
//! - Names that must be shortened keep a readable head and end in a hash of
//!   the whole slug; a shortened name is always exactly at its length limit
//!   and an unshortened one always below it, so the two forms cannot meet.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const SLUG_MAX: usize = 40;
pub const TARGET_GROUP_MAX: usize = 32;
pub const DNS_LABEL_MAX: usize = 63;
pub const PREFIX_MAX: usize = 8;

/// The naming part of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamingConfig {
    /// Starts every ECS, ELB and log-group name: `[a-z][a-z0-9]{0,7}`.
    pub prefix: String,
    /// The zone previews live under, e.g. `preview.example.com`.
    pub domain: String,
    /// Host label pattern; `{issue}`, `{slug}` and `{branch_slug}` expand.
    pub host_pattern: String,
    /// Used when the branch has no issue number and the pattern needs one.
    pub fallback_host_pattern: String,
}

impl Default for NamingConfig {
    fn default() -> Self {
        Self {
            prefix: "pv".into(),
            domain: "preview.example.com".into(),
            host_pattern: "issue-{issue}-preview".into(),
            fallback_host_pattern: "{slug}-preview".into(),
        }
    }
}

/// A problem with a naming setting, naming the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error("must match [a-z][a-z0-9]{{0,7}}")]
    BadPrefix,
    #[error("must be a DNS name of labels [a-z0-9-] (1..=63 chars, no leading or trailing `-`)")]
    BadDomain,
    #[error("may only use the placeholders {{issue}}, {{slug}} and {{branch_slug}}")]
    BadPattern,
}

impl NamingConfig {
    /// Every problem at once, each with the key it belongs to.
    pub fn problems(&self) -> Vec<(&'static str, NamingError)> {
        let mut out = Vec::new();
        let p = self.prefix.as_bytes();
        let prefix_ok = !p.is_empty()
            && p.len() <= PREFIX_MAX
            && p[0].is_ascii_lowercase()
            && p.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !prefix_ok {
            out.push(("prefix", NamingError::BadPrefix));
        }
        let domain_ok = self.domain.len() <= 253
            && !self.domain.is_empty()
            && self.domain.split('.').all(is_dns_label);
        if !domain_ok {
            out.push(("domain", NamingError::BadDomain));
        }
        for (key, pattern) in [
            ("host_pattern", &self.host_pattern),
            ("fallback_host_pattern", &self.fallback_host_pattern),
        ] {
            if !pattern_ok(pattern) {
                out.push((key, NamingError::BadPattern));
            }
        }
        if self.fallback_host_pattern.contains("{issue}") {
            out.push(("fallback_host_pattern", NamingError::BadPattern));
        }
        out
    }
}

fn pattern_ok(pattern: &str) -> bool {
    let stripped = pattern
        .replace("{issue}", "1")
        .replace("{slug}", "s")
        .replace("{branch_slug}", "b");
    !stripped.is_empty()
        && stripped
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// The names of one preview's AWS resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceNames {
    /// ECS task definition family, also the ECS service name.
    pub family: String,
    pub service: String,
    pub target_group: String,
    pub log_group: String,
    /// Fully qualified preview host, e.g. `issue-42-preview.example.com`.
    pub host: String,
}

impl ResourceNames {
    pub fn new(cfg: &NamingConfig, slug: &str, host_label: &str) -> Self {
        let family = format!("{}{slug}", family_prefix(&cfg.prefix));
        Self {
            service: family.clone(),
            target_group: shorten(&family, TARGET_GROUP_MAX, 10),
            log_group: log_group_name(&family),
            host: format!("{host_label}.{}", cfg.domain),
            family,
        }
    }
}

/// What every ECS service, task definition family and target group name
/// of ours starts with (`pv-`): listings filter on it, and the IAM policy
/// is scoped to it.
pub fn family_prefix(prefix: &str) -> String {
    format!("{prefix}-")
}

/// What every log group name of ours starts with (`/ecs/pv-`).
pub fn log_group_prefix(prefix: &str) -> String {
    log_group_name(&family_prefix(prefix))
}

/// The log group a task definition family's containers write to.
pub fn log_group_name(family: &str) -> String {
    format!("/ecs/{family}")
}

/// Lower-case, every run of other characters turned into one `-`, trimmed.
pub fn sanitize(branch: &str) -> String {
    let mut out = String::with_capacity(branch.len());
    for c in branch.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Hex of SHA-256 over the parts, cut to `len` characters.
pub fn short_hash(parts: &[&str], len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let mut s = hex::encode(h.finalize());
    s.truncate(len);
    s
}

/// `name` if it is shorter than `max`, else a head of it, `-`, and `hash_len`
/// hex characters of its hash: exactly `max` characters.
pub fn shorten(name: &str, max: usize, hash_len: usize) -> String {
    if name.len() < max {
        return name.to_owned();
    }
    let head_len = max - hash_len - 1;
    let hash = short_hash(&[name], hash_len);
    let mut head: String = name[..head_len].to_owned();
    // A `-` before the separator would make `--`; pad with the hash instead.
    while head.ends_with('-') {
        head.pop();
    }
    let mut out = format!("{head}-{hash}");
    let mut extra = short_hash(&[name, "pad"], max);
    while out.len() < max {
        out.insert(head.len(), extra.remove(0));
    }
    out
}

/// The slugs a branch may take, best first. The store assigns the first one
/// no other row holds, so the readable form wins unless it is taken.
pub fn slug_candidates(branch: &str) -> impl Iterator<Item = String> + '_ {
    let plain = sanitize(branch);
    let readable = (!plain.is_empty() && plain.len() < SLUG_MAX).then(|| plain.clone());
    let mut head = plain;
    head.truncate(SLUG_MAX - 9);
    while head.ends_with('-') {
        head.pop();
    }
    if head.is_empty() {
        head.push('b');
    }
    readable.into_iter().chain((0u32..).map(move |n| {
        let salt = n.to_string();
        format!("{head}-{}", short_hash(&[branch, &salt], 8))
    }))
}

/// The issue number in a branch such as `qanote/issue-42` (the last
/// `issue-N`, `issue_N` or `issue/N` wins).
pub fn issue_number(branch: &str) -> Option<u64> {
    let lower = branch.to_ascii_lowercase();
    let mut found = None;
    let mut rest = lower.as_str();
    while let Some(pos) = rest.find("issue") {
        let after = &rest[pos + 5..];
        let digits_start = after.strip_prefix(['-', '_', '/']).unwrap_or(after);
        let digits: String = digits_start
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if !digits.is_empty() && digits.len() <= 18 {
            found = digits.parse().ok();
        }
        rest = after;
    }
    found
}

/// Host labels a preview may take, best first; the store assigns the first
/// free one, so two branches naming the same issue get different hosts.
pub fn host_label_candidates(cfg: &NamingConfig, branch: &str, slug: &str) -> Vec<String> {
    let branch_slug = sanitize(branch);
    let expand = |pattern: &str, issue: Option<u64>| -> Option<String> {
        if pattern.contains("{issue}") && issue.is_none() {
            return None;
        }
        let label = pattern
            .replace("{issue}", &issue.map(|n| n.to_string()).unwrap_or_default())
            .replace("{slug}", slug)
            .replace("{branch_slug}", &branch_slug);
        let label = sanitize(&label);
        (!label.is_empty()).then(|| shorten(&label, DNS_LABEL_MAX, 10))
    };
    let issue = issue_number(branch);
    let mut out: Vec<String> = [
        expand(&cfg.host_pattern, issue),
        expand(&cfg.fallback_host_pattern, None),
    ]
    .into_iter()
    .flatten()
    .collect();
    // The slug is unique, so a label built only from it is the last resort.
    out.push(shorten(
        &format!("{slug}-{}", short_hash(&[branch], 6)),
        DNS_LABEL_MAX,
        10,
    ));
    out.dedup();
    out
}

pub fn is_dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= DNS_LABEL_MAX
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// AWS: ≤ 32 chars of `[A-Za-z0-9-]`, not starting or ending with `-`.
pub fn is_target_group_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= TARGET_GROUP_MAX
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// ECS service and family names: ≤ 255 of `[A-Za-z0-9_-]`, starting with a letter.
pub fn is_ecs_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// CloudWatch log group names: ≤ 512 of `[A-Za-z0-9_/.#-]`.
pub fn is_log_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-/.#".contains(&c))
}

pub fn is_slug(slug: &str) -> bool {
    is_dns_label(slug) && slug.len() <= SLUG_MAX && !slug.contains("--")
}

#[cfg(test)]
#[path = "naming_tests.rs"]
mod tests;
