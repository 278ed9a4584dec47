//! Gathers the image checks of many passes into DescribeImages batches,
//! one per repository.
//!
//! A check waits for no window: the first one goes out at once, and the
//! checks asked while a request is in flight go together in the next
//! round (up to 100 image ids a request, the adapter's concern). A lone
//! pass pays no delay; a burst of new previews waiting on their images
//! costs a request per repository per round, not one per preview.

use previewd_core::CloudError;
use previewd_core::image::{EcrImage, Repository};
use previewd_core::ports::{CloudResult, Images};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Request = (EcrImage, oneshot::Sender<CloudResult<bool>>);

#[derive(Clone)]
pub struct ImageBatcher {
    tx: mpsc::Sender<Request>,
}

impl ImageBatcher {
    /// Starts the batching task; it ends when every handle is dropped.
    pub fn spawn(images: Arc<dyn Images>) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(images, rx));
        Self { tx }
    }

    /// Whether `image` exists, asked in a batch with others.
    pub async fn exists(&self, image: EcrImage) -> CloudResult<bool> {
        let (done, result) = oneshot::channel();
        let closed = || CloudError::Transient {
            code: "Shutdown".into(),
            message: "image batcher stopped".into(),
        };
        self.tx.send((image, done)).await.map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }
}

async fn run(images: Arc<dyn Images>, mut rx: mpsc::Receiver<Request>) {
    while let Some(first) = rx.recv().await {
        let mut round = vec![first];
        while let Ok(more) = rx.try_recv() {
            round.push(more);
        }
        // A pass that timed out has dropped its receiver: no need to ask.
        round.retain(|(_, done)| !done.is_closed());
        let mut by_repo: BTreeMap<Repository, Vec<Request>> = BTreeMap::new();
        for req in round {
            by_repo
                .entry(req.0.repository.clone())
                .or_default()
                .push(req);
        }
        for (repo, reqs) in by_repo {
            let mut refs: Vec<_> = reqs.iter().map(|(i, _)| i.reference.clone()).collect();
            refs.sort();
            refs.dedup();
            match images.existing_images(&repo, &refs).await {
                Ok(found) => {
                    for (image, done) in reqs {
                        let _ = done.send(Ok(found.contains(&image.reference)));
                    }
                }
                Err(e) => {
                    for (_, done) in reqs {
                        let _ = done.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}
