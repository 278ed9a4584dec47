//! Awaits several listings at once (one per pool listener), failing with
//! the first error, without pulling in a futures crate for one function.

use previewd_core::ports::CloudResult;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

pub(super) type Boxed<'a, T> = Pin<Box<dyn Future<Output = CloudResult<T>> + Send + 'a>>;

/// Every future's output in order, or the first error (the rest dropped).
pub(super) async fn all<T>(futures: Vec<Boxed<'_, T>>) -> CloudResult<Vec<T>> {
    let mut futures: Vec<Option<Boxed<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut done: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (slot, out) in futures.iter_mut().zip(done.iter_mut()) {
            let Some(f) = slot else { continue };
            match f.as_mut().poll(cx) {
                Poll::Ready(Ok(v)) => {
                    *out = Some(v);
                    *slot = None;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => waiting = true,
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await?;
    Ok(done
        .into_iter()
        .map(|v| v.expect("every future finished"))
        .collect())
}
