//! CloudWatch Logs: the preview log groups, created with their retention
//! before any task definition points at them.

use crate::{Aws, Op, tag_map};
use async_trait::async_trait;
use previewd_core::observed::ObservedLogGroup;
use previewd_core::ports::{CloudResult, Logs};
use previewd_core::tags::Tags;

/// One group as DescribeLogGroups lists it.
struct Listed {
    name: String,
    arn: String,
    retention_days: Option<i32>,
}

impl Aws {
    /// Every group whose name starts with `prefix`, paged (50 a page).
    async fn describe_groups(&self, prefix: &str) -> CloudResult<Vec<Listed>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .run(
                    Op::DescribeLogGroups,
                    self.logs
                        .describe_log_groups()
                        .log_group_name_prefix(prefix)
                        .set_next_token(token.clone())
                        .send(),
                )
                .await?;
            out.extend(page.log_groups().iter().filter_map(|g| {
                Some(Listed {
                    name: g.log_group_name()?.to_owned(),
                    arn: g.arn()?.to_owned(),
                    retention_days: g.retention_in_days(),
                })
            }));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}

#[async_trait]
impl Logs for Aws {
    async fn log_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedLogGroup>> {
        Ok(self
            .describe_groups(prefix)
            .await?
            .into_iter()
            .map(|g| ObservedLogGroup {
                name: g.name,
                retention_days: g.retention_days,
                tags: Tags::new(),
            })
            .collect())
    }

    /// DescribeLogGroups for the group's ARN (the prefix lists this group
    /// and any whose name extends it), then ListTagsForResource. The ARN is
    /// not built from the name: a tag read of a group that does not exist
    /// must say so, and ListTagsForResource on moto answers an unknown ARN
    /// with no tags rather than an error.
    async fn log_group_tags(&self, name: &str) -> CloudResult<Option<Tags>> {
        let listed = self.describe_groups(name).await?;
        let Some(g) = listed.iter().find(|g| g.name == name) else {
            return Ok(None);
        };
        // DescribeLogGroups gives `…:log-group:NAME:*`; tagging wants the
        // ARN without the trailing `:*`.
        let arn = g.arn.strip_suffix(":*").unwrap_or(&g.arn);
        let listed = self
            .run(
                Op::ListTagsForResource,
                self.logs.list_tags_for_resource().resource_arn(arn).send(),
            )
            .await;
        match listed {
            Ok(l) => Ok(Some(tag_map(l.tags().cloned().unwrap_or_default()))),
            // Deleted between the two requests.
            Err(previewd_core::CloudError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_log_group(
        &self,
        name: &str,
        retention_days: i32,
        tags: &Tags,
    ) -> CloudResult<()> {
        self.run(
            Op::CreateLogGroup,
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
        self.run(
            Op::PutRetentionPolicy,
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
            .run(
                Op::DeleteLogGroup,
                self.logs.delete_log_group().log_group_name(name).send(),
            )
            .await;
        previewd_core::error::gone_is_fine(r.map(drop))
    }
}
