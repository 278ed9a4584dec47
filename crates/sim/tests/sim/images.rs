//! ECR: DescribeImages as AWS answers it, and the port's batching around
//! its all-or-nothing ImageNotFoundException.

use crate::*;
use previewd_core::CloudError;
use previewd_core::image::{EcrImage, ImageRef, Repository};
use previewd_core::limits::{BucketSpec, Limits};
use previewd_core::ports::Images;

const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop";

fn repository() -> Repository {
    EcrImage::parse(&format!("{REPO}:x")).unwrap().repository
}

fn tag(t: &str) -> ImageRef {
    ImageRef::Tag(t.into())
}

#[tokio::test]
async fn one_missing_image_does_not_hide_the_others() {
    let sim = sim();
    sim.push_image(&format!("{REPO}:a"));
    sim.push_image(&format!("{REPO}:c"));
    let found = sim
        .existing_images(&repository(), &[tag("a"), tag("b"), tag("c")])
        .await
        .unwrap();
    let mut found = found;
    found.sort();
    assert_eq!(found, [tag("a"), tag("c")]);
    // [a b c] fails, then [a] and [b c]; [b c] fails, then [b] and [c].
    assert_eq!(calls(&sim, "ecr:DescribeImages"), 5);
}

#[tokio::test]
async fn images_all_present_cost_one_request_per_hundred() {
    let sim = sim();
    let refs: Vec<ImageRef> = (0..150).map(|i| tag(&format!("t{i}"))).collect();
    for r in &refs {
        let ImageRef::Tag(t) = r else { unreachable!() };
        sim.push_image(&format!("{REPO}:{t}"));
    }
    let found = sim.existing_images(&repository(), &refs).await.unwrap();
    assert_eq!(found.len(), 150);
    assert_eq!(calls(&sim, "ecr:DescribeImages"), 2);
}

#[tokio::test]
async fn a_digest_is_found_by_its_digest() {
    let sim = sim();
    let digest = format!("sha256:{}", "0f".repeat(32));
    sim.push_image(&format!("{REPO}@{digest}"));
    let found = sim
        .existing_images(
            &repository(),
            &[ImageRef::Digest(digest.clone()), tag("latest")],
        )
        .await
        .unwrap();
    assert_eq!(found, [ImageRef::Digest(digest)]);
}

#[tokio::test]
async fn a_repository_that_does_not_exist_holds_no_image() {
    let sim = sim();
    let found = sim
        .existing_images(&repository(), &[tag("a")])
        .await
        .unwrap();
    assert!(found.is_empty());
    sim.create_repository("shop");
    assert!(
        sim.existing_images(&repository(), &[tag("a")])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn describe_images_denied_names_the_action() {
    let sim = sim();
    sim.deny("ecr:DescribeImages");
    let err = sim
        .existing_images(&repository(), &[tag("a")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CloudError::AccessDenied { action, .. } if action == "ecr:DescribeImages"),
        "{err:?}"
    );
}

#[tokio::test]
async fn describe_images_takes_from_the_ecr_bucket() {
    let sim = Sim::new(SimConfig {
        throttling: true,
        limits: Limits {
            ecr_read: BucketSpec::new(1.0, 0.001),
            ..Limits::default()
        },
        ..SimConfig::default()
    });
    sim.push_image(&format!("{REPO}:a"));
    sim.existing_images(&repository(), &[tag("a")])
        .await
        .unwrap();
    let err = sim
        .existing_images(&repository(), &[tag("a")])
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::Throttled(_)), "{err:?}");
}
