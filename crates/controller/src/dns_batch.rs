//! Gathers the DNS changes of many previews into one Route53 change batch.
//!
//! Route53 allows 5 requests/s per account, but one request may carry up
//! to 1,000 record changes; a burst of previews therefore costs a handful
//! of calls instead of one per preview.

use previewd_core::CloudError;
use previewd_core::ports::{CloudResult, Dns};
use previewd_core::render::DnsChange;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests merged into one batch at most (each is an A and a TXT record,
/// well under Route53's 1,000 elements and 32,000 characters).
const MAX_REQUESTS_PER_BATCH: usize = 100;

type Request = (Vec<DnsChange>, oneshot::Sender<CloudResult<()>>);

#[derive(Clone)]
pub struct DnsBatcher {
    tx: mpsc::Sender<Request>,
}

impl DnsBatcher {
    /// Starts the batching task; it ends when every handle is dropped.
    pub fn spawn(dns: Arc<dyn Dns>, window: Duration) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(dns, window, rx));
        Self { tx }
    }

    /// Applies `changes` atomically, possibly in a batch with others.
    pub async fn change(&self, changes: Vec<DnsChange>) -> CloudResult<()> {
        let (done, result) = oneshot::channel();
        let closed = || previewd_core::CloudError::Transient {
            code: "Shutdown".into(),
            message: "DNS batcher stopped".into(),
        };
        self.tx.send((changes, done)).await.map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }
}

async fn run(dns: Arc<dyn Dns>, window: Duration, mut rx: mpsc::Receiver<Request>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        // A pass that timed out has dropped its receiver: its change must
        // not land after the pass gave up (and another may have begun).
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < MAX_REQUESTS_PER_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(req)) => batch.push(req),
                _ => break,
            }
        }
        batch.retain(|(_, done)| !done.is_closed());
        if batch.is_empty() {
            continue;
        }
        let all: Vec<DnsChange> = batch.iter().flat_map(|(c, _)| c.clone()).collect();
        match dns.change(&all).await {
            Ok(()) => batch
                .into_iter()
                .for_each(|(_, done)| drop(done.send(Ok(())))),
            // A batch is atomic: one invalid request sinks all. Retry each
            // on its own so only the bad one sees its error, skipping any
            // whose pass has given up meanwhile.
            Err(CloudError::Invalid { .. }) if batch.len() > 1 => {
                for (changes, done) in batch {
                    if !done.is_closed() {
                        let _ = done.send(dns.change(&changes).await);
                    }
                }
            }
            // Throttling or a 5xx hits every request alike: retrying them
            // one by one would only spend more of Route53's 5 calls/s.
            Err(e) => batch
                .into_iter()
                .for_each(|(_, done)| drop(done.send(Err(e.clone())))),
        }
    }
}
