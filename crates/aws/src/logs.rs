//! CloudWatch Logs: the preview log groups, created with their retention
//! before any task definition points at them.

use crate::{Aws, Op, tag_map};
use async_trait::async_trait;
use previewd_core::observed::ObservedLogGroup;
use previewd_core::ports::{CloudResult, Logs};
use previewd_core::tags::Tags;
use std::collections::HashMap;
use std::sync::Mutex;

const DESCRIBE: Op = Op::new("logs", "DescribeLogGroups");
const LIST_TAGS: Op = Op::new("logs", "ListTagsForResource");
const CREATE: Op = Op::new("logs", "CreateLogGroup");
const RETENTION: Op = Op::new("logs", "PutRetentionPolicy");
const DELETE: Op = Op::new("logs", "DeleteLogGroup");

/// Tags of log groups already seen, keyed by name and creation time (a
/// deleted and recreated group is a new key).
pub(crate) type TagCache = Mutex<HashMap<(String, i64), Tags>>;

#[async_trait]
impl Logs for Aws {
    async fn log_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedLogGroup>> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .calls
                .run(
                    DESCRIBE,
                    self.logs
                        .describe_log_groups()
                        .log_group_name_prefix(prefix)
                        .set_next_token(token.clone())
                        .send(),
                )
                .await?;
            for g in page.log_groups() {
                let (Some(name), Some(arn)) = (g.log_group_name(), g.arn()) else {
                    continue;
                };
                let created = g.creation_time().unwrap_or_default();
                seen.push((name.to_owned(), created));
                let tags = self.log_group_tags(name, arn, created).await?;
                out.push(ObservedLogGroup {
                    name: name.to_owned(),
                    retention_days: g.retention_in_days(),
                    tags,
                });
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                // Forget groups under this prefix that are gone.
                self.log_group_tags
                    .lock()
                    .expect("tag cache")
                    .retain(|k, _| !k.0.starts_with(prefix) || seen.contains(k));
                return Ok(out);
            }
        }
    }

    async fn create_log_group(
        &self,
        name: &str,
        retention_days: i32,
        tags: &Tags,
    ) -> CloudResult<()> {
        self.calls
            .run(
                CREATE,
                self.logs
                    .create_log_group()
                    .log_group_name(name)
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send(),
            )
            .await?;
        self.set_retention(name, retention_days).await
    }

    async fn set_retention(&self, name: &str, retention_days: i32) -> CloudResult<()> {
        self.calls
            .run(
                RETENTION,
                self.logs
                    .put_retention_policy()
                    .log_group_name(name)
                    .retention_in_days(retention_days)
                    .send(),
            )
            .await
            .map(drop)
    }

    async fn delete_log_group(&self, name: &str) -> CloudResult<()> {
        let r = self
            .calls
            .run(
                DELETE,
                self.logs.delete_log_group().log_group_name(name).send(),
            )
            .await;
        match r {
            Err(previewd_core::CloudError::NotFound(_)) => Ok(()),
            other => other.map(drop),
        }
    }
}

impl Aws {
    async fn log_group_tags(&self, name: &str, arn: &str, created: i64) -> CloudResult<Tags> {
        let key = (name.to_owned(), created);
        if let Some(tags) = self.log_group_tags.lock().expect("tag cache").get(&key) {
            return Ok(tags.clone());
        }
        // DescribeLogGroups gives `…:log-group:NAME:*`; tagging wants the
        // ARN without the trailing `:*`.
        let arn = arn.strip_suffix(":*").unwrap_or(arn);
        let listed = self
            .calls
            .run(
                LIST_TAGS,
                self.logs.list_tags_for_resource().resource_arn(arn).send(),
            )
            .await?;
        let tags = tag_map(listed.tags().cloned().unwrap_or_default());
        self.log_group_tags
            .lock()
            .expect("tag cache")
            .insert(key, tags.clone());
        Ok(tags)
    }
}
