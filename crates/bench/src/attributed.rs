//! The AWS requests the idle check makes itself, counted exactly: the sim
//! counts each request in `previewd_aws_calls_total` from the task that
//! makes it, and this recorder keeps those made inside [`idle_check`]'s
//! scope. A listing the idle check only reads from the observer's cache
//! (fetched by a reconcile pass) is not its request; one it fetches
//! because the cache was too old is.

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use previewd_core::metrics::AWS_CALLS;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

tokio::task_local! {
    static IDLE_CHECK: ();
}

/// Runs `f` as the idle check: the AWS requests made while it is polled
/// are the idle check's.
pub async fn idle_check<F: Future>(f: F) -> F::Output {
    IDLE_CHECK.scope((), f).await
}

/// Requests made inside [`idle_check`], by `service:operation`.
#[derive(Default)]
pub struct IdleCheckCalls(Mutex<BTreeMap<String, u64>>);

impl IdleCheckCalls {
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// Installs the recorder for this process; `None` if one is installed.
pub fn install() -> Option<Arc<IdleCheckCalls>> {
    let calls = Arc::new(IdleCheckCalls::default());
    metrics::set_global_recorder(Attributing(calls.clone())).ok()?;
    Some(calls)
}

struct Attributing(Arc<IdleCheckCalls>);

struct One {
    calls: Arc<IdleCheckCalls>,
    op: String,
}

impl CounterFn for One {
    fn increment(&self, value: u64) {
        *self
            .calls
            .0
            .lock()
            .expect("not poisoned")
            .entry(self.op.clone())
            .or_default() += value;
    }

    fn absolute(&self, _value: u64) {}
}

impl Recorder for Attributing {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() != AWS_CALLS || IDLE_CHECK.try_with(|_| ()).is_err() {
            return Counter::noop();
        }
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        Counter::from_arc(Arc::new(One {
            calls: self.0.clone(),
            op: format!("{}:{}", label("service"), label("operation")),
        }))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
