//! A pass-through `Logs` port that notes when each log group was first
//! asked for: the first mutating AWS call of a new preview, for the
//! reaction scenario.

use async_trait::async_trait;
use previewd_core::observed::ObservedLogGroup;
use previewd_core::ports::{CloudResult, Logs};
use previewd_core::tags::Tags;
use previewd_sim::Sim;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::time::Instant;

pub struct Tap {
    sim: Sim,
    /// Log group name → when CreateLogGroup was first called for it.
    first_create: Mutex<HashMap<String, Instant>>,
}

impl Tap {
    pub fn new(sim: Sim) -> Self {
        Self {
            sim,
            first_create: Mutex::new(HashMap::new()),
        }
    }

    /// When CreateLogGroup was first called for `name`, if it was.
    pub fn first_create(&self, name: &str) -> Option<Instant> {
        self.first_create
            .lock()
            .expect("not poisoned")
            .get(name)
            .copied()
    }
}

#[async_trait]
impl Logs for Tap {
    async fn log_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedLogGroup>> {
        self.sim.log_groups(prefix).await
    }

    async fn log_group_tags(&self, name: &str) -> CloudResult<Option<Tags>> {
        self.sim.log_group_tags(name).await
    }

    async fn create_log_group(
        &self,
        name: &str,
        retention_days: i32,
        tags: &Tags,
    ) -> CloudResult<()> {
        self.first_create
            .lock()
            .expect("not poisoned")
            .entry(name.to_string())
            .or_insert_with(Instant::now);
        self.sim.create_log_group(name, retention_days, tags).await
    }

    async fn set_retention(&self, name: &str, retention_days: i32) -> CloudResult<()> {
        self.sim.set_retention(name, retention_days).await
    }

    async fn delete_log_group(&self, name: &str) -> CloudResult<()> {
        self.sim.delete_log_group(name).await
    }
}
