//! The image check of one pass, and what the observer remembers of it: an
//! image once found is kept for good (tags are assumed immutable, see
//! `previewd_core::image`), so a preview's later passes ask nothing; a
//! missing one is asked again on every pass, since it may be pushed at any
//! moment and its rollout should start on the pass after.

use super::Observer;
use previewd_core::image::{ImageCheck, to_check};
use previewd_core::model::Preview;
use previewd_core::ports::CloudResult;
use previewd_core::render::Wanted;

impl Observer {
    /// Whether the preview's wanted image is in ECR, when the pass needs to
    /// know ([`to_check`]).
    pub(super) async fn image(&self, p: &Preview, w: &Wanted) -> CloudResult<ImageCheck> {
        let uri = &w.task_definition.container.image;
        // Each project's own rules (its image wait, its registry).
        let template = self
            .projects
            .template(&p.key.project)
            .unwrap_or(&self.template);
        let Some(image) = to_check(p, uri, template) else {
            return Ok(ImageCheck::NotChecked);
        };
        if self
            .found_images
            .lock()
            .expect("not poisoned")
            .contains(&image)
        {
            return Ok(ImageCheck::Present);
        }
        if self.image_batcher.exists(image.clone()).await? {
            self.found_images
                .lock()
                .expect("not poisoned")
                .insert(image);
            return Ok(ImageCheck::Present);
        }
        Ok(ImageCheck::Missing {
            image: uri.clone(),
            checked_at: chrono::Utc::now(),
        })
    }
}
