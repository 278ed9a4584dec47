//! Where a run's requests went over time: the simulated account's call
//! counts, sampled every ten seconds, as the requests of each window by
//! operation. A run that misses its bound shows here which bucket sat idle
//! and what the controller spent meanwhile.

use previewd_sim::Sim;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(10);

/// The requests of one window, by operation (those with none left out).
#[derive(Debug, Serialize)]
pub struct Window {
    /// Seconds from the start of the run to the window's end.
    pub until_secs: u64,
    pub calls: BTreeMap<String, u64>,
}

/// A sampler running beside the run.
pub struct Sampler {
    task: JoinHandle<Vec<Window>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts sampling `sim`'s call counts.
pub fn sample(sim: Sim) -> Sampler {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let t0 = Instant::now();
        let mut last = sim.calls();
        let mut out = Vec::new();
        loop {
            let done = tokio::select! {
                _ = tokio::time::sleep(WINDOW) => false,
                _ = &mut stopped => true,
            };
            let now = sim.calls();
            let calls = now
                .iter()
                .map(|(op, n)| {
                    (
                        op.clone(),
                        n.saturating_sub(last.get(op).copied().unwrap_or(0)),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect();
            out.push(Window {
                until_secs: t0.elapsed().as_secs(),
                calls,
            });
            last = now;
            if done {
                return out;
            }
        }
    });
    Sampler { task, stop }
}

impl Sampler {
    /// The windows so far, the last one cut short at this call.
    pub async fn finish(self) -> Vec<Window> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}
