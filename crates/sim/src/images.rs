//! ECR: repositories and the images pushed to them, as DescribeImages sees
//! them (one answer for a whole request, ImageNotFoundException if any id
//! in it is missing).

use crate::config::ACCOUNT;
use crate::world::World;
use previewd_core::image::{EcrImage, ImageRef, Repository};
use previewd_core::operations::Op;
use previewd_core::ports::CloudResult;
use std::collections::{BTreeMap, BTreeSet};

/// DescribeImages takes at most 100 image ids a request.
const IDS_PER_REQUEST: usize = 100;

#[derive(Debug, Default)]
pub(crate) struct ImagesState {
    /// Repository name → the tags and digests pushed to it.
    pub repositories: BTreeMap<String, BTreeSet<ImageRef>>,
}

impl World {
    fn repository_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ecr:{}:{ACCOUNT}:repository/{name}",
            self.cfg.region
        )
    }

    /// DescribeImages with image ids, as an adapter must call it: each
    /// request that names a missing image fails as a whole, and its batch
    /// is split until every id's answer is known. Every request is gated
    /// (counted, throttled, authorized) like any other.
    pub(crate) fn ecr_existing(
        &mut self,
        repo: &Repository,
        refs: &[ImageRef],
    ) -> CloudResult<Vec<ImageRef>> {
        let arn = self.repository_arn(&repo.name);
        let mut found = Vec::new();
        let mut todo: Vec<&[ImageRef]> = refs.chunks(IDS_PER_REQUEST).collect();
        while let Some(batch) = todo.pop() {
            self.gate(Op::DescribeImages, &arn)?;
            let in_repo = (repo.registry_id == ACCOUNT && repo.region == self.cfg.region)
                .then(|| self.images.repositories.get(&repo.name))
                .flatten();
            let Some(pushed) = in_repo else {
                // RepositoryNotFoundException: it holds none of them.
                return Ok(Vec::new());
            };
            if batch.iter().all(|r| pushed.contains(r)) {
                found.extend(batch.iter().cloned());
            } else if batch.len() > 1 {
                let (a, b) = batch.split_at(batch.len() / 2);
                todo.push(a);
                todo.push(b);
            }
        }
        Ok(found)
    }
}

impl crate::Sim {
    /// Creates an empty repository (a no-op if it exists).
    pub fn create_repository(&self, name: &str) {
        self.lock()
            .images
            .repositories
            .entry(name.to_owned())
            .or_default();
    }

    /// Pushes `uri` (an ECR image URI in the simulated account), creating
    /// its repository if need be: from now on DescribeImages finds it.
    ///
    /// # Panics
    /// When `uri` is not an ECR image URI: a test's mistake.
    pub fn push_image(&self, uri: &str) {
        let image = EcrImage::parse(uri).unwrap_or_else(|| panic!("not an ECR image: {uri}"));
        self.lock()
            .images
            .repositories
            .entry(image.repository.name)
            .or_default()
            .insert(image.reference);
    }
}
