//! ECR: which preview images exist (DescribeImages).
//!
//! DescribeImages with `imageIds` fails as a whole, with
//! ImageNotFoundException, when any one id is missing; it returns no
//! partial answer (BatchGetImage does, but it reads manifests and needs
//! another permission). A batch that fails so is split in halves until
//! every id's answer is known: k missing images among n cost about
//! 2k·log2(n) more requests, whatever the repository's size, where listing
//! the repository instead would cost a page per thousand images.

use crate::{Aws, Op};
use async_trait::async_trait;
use aws_sdk_ecr::types::{ImageDetail, ImageIdentifier};
use previewd_core::CloudError;
use previewd_core::image::{ImageRef, Repository};
use previewd_core::ports::{CloudResult, Images};

/// DescribeImages takes at most 100 image ids a request.
const IDS_PER_REQUEST: usize = 100;

/// How one DescribeImages request ended.
enum Answer {
    /// Every id was found; the images' details.
    Found(Vec<ImageDetail>),
    /// At least one id is missing (which, AWS does not say).
    SomeMissing,
    NoRepository,
}

fn identifier(r: &ImageRef) -> ImageIdentifier {
    match r {
        ImageRef::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
        ImageRef::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
    }
}

/// Whether one of `details` is the image `r` names.
fn describes(details: &[ImageDetail], r: &ImageRef) -> bool {
    details.iter().any(|d| match r {
        ImageRef::Tag(t) => d.image_tags().iter().any(|x| x == t),
        ImageRef::Digest(x) => d.image_digest() == Some(x.as_str()),
    })
}

impl Aws {
    async fn describe_images(&self, repo: &Repository, batch: &[ImageRef]) -> CloudResult<Answer> {
        let call = self
            .ecr
            .describe_images()
            .registry_id(&repo.registry_id)
            .repository_name(&repo.name)
            .set_image_ids(Some(batch.iter().map(identifier).collect()))
            .send();
        match self.run(Op::DescribeImages, call).await {
            Ok(out) => Ok(Answer::Found(out.image_details().to_vec())),
            Err(CloudError::NotFound(m)) if m.starts_with("ImageNotFoundException") => {
                Ok(Answer::SomeMissing)
            }
            Err(CloudError::NotFound(m)) if m.starts_with("RepositoryNotFoundException") => {
                Ok(Answer::NoRepository)
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Images for Aws {
    async fn existing_images(
        &self,
        repository: &Repository,
        references: &[ImageRef],
    ) -> CloudResult<Vec<ImageRef>> {
        let mut found = Vec::new();
        let mut todo: Vec<&[ImageRef]> = references.chunks(IDS_PER_REQUEST).collect();
        while let Some(batch) = todo.pop() {
            match self.describe_images(repository, batch).await? {
                Answer::Found(details) => {
                    found.extend(batch.iter().filter(|r| describes(&details, r)).cloned())
                }
                Answer::SomeMissing if batch.len() > 1 => {
                    let (a, b) = batch.split_at(batch.len() / 2);
                    todo.push(a);
                    todo.push(b);
                }
                Answer::SomeMissing => {}
                Answer::NoRepository => return Ok(Vec::new()),
            }
        }
        Ok(found)
    }
}
