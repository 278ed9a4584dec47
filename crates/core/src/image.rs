//! Whether a preview's image exists yet: which images are in ECR (and so
//! checked), what the observer saw of one, and what `plan` does while it
//! is missing.
//!
//! ```text
//!  container.image ─render─▶ "1234….dkr.ecr.us-east-1.amazonaws.com/app:abc123"
//!        EcrImage::parse ─▶ Some(EcrImage) ─▶ observer asks `Images` ─▶ ImageCheck
//!                        └▶ None (Docker Hub, public ECR, another Region): not checked
//!  gate(row, check, wait) ─▶ None (go on) | WaitingForImage | Failed (waited too long)
//! ```
//!
//! # Assumptions
//! Tags are treated as immutable: once an image is found it is remembered
//! and never asked for again. A tag pushed over still exists, so the
//! answer stays right on a mutable repository too.
//!
//! # Caveats
//! An image deleted after it was found (a lifecycle rule expiring it) is
//! not noticed here; ECS's `CannotPullContainerError` reports it.

use crate::model::{Desired, Preview, Timestamp};
use crate::plan::Verdict;
use crate::render::Template;
use std::fmt;
use std::time::Duration;

/// What the image check waits for by default: `container.image_wait_secs`.
pub const DEFAULT_IMAGE_WAIT_SECS: u64 = 900;

/// An image reference inside one repository: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageRef {
    Tag(String),
    /// `sha256:` and 64 lowercase hex digits.
    Digest(String),
}

/// An ECR repository, as DescribeImages names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    /// The registry's account id (twelve digits).
    pub registry_id: String,
    pub region: String,
    pub name: String,
}

/// An image in a private ECR registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EcrImage {
    pub repository: Repository,
    pub reference: ImageRef,
}

impl EcrImage {
    /// `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>` or
    /// `…/<repository>@sha256:<digest>` (a reference without either means
    /// `latest`, as Docker reads it). Anything else is `None`: an image
    /// outside ECR (or malformed) is not checked, ECS reports it.
    pub fn parse(uri: &str) -> Option<EcrImage> {
        let (host, path) = uri.split_once('/')?;
        let (account, region) = host.split_once(".dkr.ecr.")?;
        let region = region.strip_suffix(domain(region))?;
        let twelve_digits = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !twelve_digits || !region_ok {
            return None;
        }
        let (name, reference) = if let Some((name, digest)) = path.split_once('@') {
            let hex = digest.strip_prefix("sha256:")?;
            let hex_ok = hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return None;
            }
            (name, ImageRef::Digest(digest.to_owned()))
        } else {
            match path.rsplit_once(':') {
                Some((name, tag)) => (name, ImageRef::Tag(tag.to_owned())),
                None => (path, ImageRef::Tag("latest".to_owned())),
            }
        };
        if !repository_name_ok(name) {
            return None;
        }
        if let ImageRef::Tag(tag) = &reference
            && !tag_ok(tag)
        {
            return None;
        }
        Some(EcrImage {
            repository: Repository {
                registry_id: account.to_owned(),
                region: region.to_owned(),
                name: name.to_owned(),
            },
            reference,
        })
    }

    /// The image of a rendered `image` that the check covers: in ECR and
    /// in `region`, the Region previewd's ECR client asks (an image in
    /// another Region is not checked; ECS reports it if it is missing).
    pub fn checked(image: &str, region: &str) -> Option<EcrImage> {
        EcrImage::parse(image).filter(|i| i.repository.region == region)
    }

    /// Whether previewd's own policy lets it describe this image: in
    /// `account` (when known) and, when `repository` is set, in that one.
    /// An image elsewhere (another account's registry, say) is not checked,
    /// as one outside ECR is not: the check would only be refused, and ECS,
    /// whose execution role may well pull it, reports it if it is missing.
    pub fn in_scope(&self, account: Option<&str>, repository: Option<&str>) -> bool {
        account.is_none_or(|a| self.repository.registry_id == a)
            && repository.is_none_or(|r| self.repository.name == r)
    }
}

impl fmt::Display for EcrImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.repository;
        let domain = domain(&r.region);
        write!(
            f,
            "{}.dkr.ecr.{}{domain}/{}",
            r.registry_id, r.region, r.name
        )?;
        match &self.reference {
            ImageRef::Tag(t) => write!(f, ":{t}"),
            ImageRef::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// The registry's domain in a Region: China's Regions have their own.
fn domain(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        ".amazonaws.com.cn"
    } else {
        ".amazonaws.com"
    }
}

/// ECR's repository name rule: 2 to 256 characters, lowercase
/// alphanumeric components separated by `.`, `_`, `-` or `/`.
fn repository_name_ok(name: &str) -> bool {
    let separator = |b: u8| matches!(b, b'.' | b'_' | b'-' | b'/');
    (2..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || separator(b))
        && name
            .split(['.', '_', '-', '/'])
            .all(|part| !part.is_empty())
}

/// Docker's tag rule: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn tag_ok(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match tag.as_bytes() {
        [first, rest @ ..] => {
            tag.len() <= 128 && word(*first) && rest.iter().all(|&b| word(b) || b"-.".contains(&b))
        }
        [] => false,
    }
}

/// What the observer saw of a preview's image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ImageCheck {
    /// Not looked for: outside ECR, or no need ([`needs_check`]).
    #[default]
    NotChecked,
    Present,
    /// Looked for at `checked_at` and not found.
    Missing {
        image: String,
        checked_at: Timestamp,
    },
}

/// Whether a pass looks for the preview's image: only for a present row
/// not yet Ready at its generation (a steady resync asks nothing) whose
/// image is checked at all. A preview sleeping (or waking) at its
/// generation was Ready with this image: not asked again either.
pub fn needs_check(p: &Preview, image: &str, region: &str) -> Option<EcrImage> {
    let slept =
        p.status.phase == crate::Phase::Sleeping && p.status.observed_generation == p.generation;
    if p.desired != Desired::Present || p.is_ready_at_generation() || slept {
        return None;
    }
    EcrImage::checked(image, region)
}

/// The image a pass over `p` looks for, if any: [`needs_check`], and only
/// where previewd's policy reaches ([`EcrImage::in_scope`], from `t`'s
/// account and repository).
pub fn to_check(p: &Preview, image: &str, t: &Template) -> Option<EcrImage> {
    needs_check(p, image, &t.region)
        .filter(|i| i.in_scope(t.ecr_account.as_deref(), t.ecr_repository.as_deref()))
}

/// When the row's current generation was asked for: its deploy's time
/// (`deployed_at`), else its creation (a row written before previewd kept
/// deploy times).
pub fn asked_at(p: &Preview) -> Timestamp {
    p.deployed_at.unwrap_or(p.created_at)
}

/// What a missing image means for the plan: `None` while nothing holds it
/// back (present, or not checked). Missing, it waits (`WaitingForImage`,
/// nothing created or changed) until `wait` has passed since the
/// generation was asked for, then the preview is `Failed` naming the image
/// first (GitHub keeps 140 characters of a description).
pub fn gate(p: &Preview, check: &ImageCheck, wait: Duration) -> Option<Verdict> {
    let ImageCheck::Missing { image, checked_at } = check else {
        return None;
    };
    let waited = (*checked_at - asked_at(p)).to_std().unwrap_or_default();
    if waited >= wait {
        return Some(Verdict::Failed(format!(
            "image {image} not found in ECR {} s after the deploy (container.image_wait_secs)",
            wait.as_secs()
        )));
    }
    Some(Verdict::WaitingForImage(image.clone()))
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
