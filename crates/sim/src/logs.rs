//! CloudWatch Logs: log groups with retention and tags.

use crate::config::ACCOUNT;
use crate::world::{World, invalid};
use previewd_core::CloudError;
use previewd_core::error::gone_is_fine;
use previewd_core::naming::is_log_group_name;
use previewd_core::observed::ObservedLogGroup;
use previewd_core::operations::{LOGS_TAG_RESOURCE, Op};
use previewd_core::ports::CloudResult;
use previewd_core::tags::Tags;
use std::collections::BTreeMap;

// AWS publishes no rate for it; DescribeLogGroups carries no tags, so an
// adapter pays one of these per group.

/// The only retention periods PutRetentionPolicy accepts.
const RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Debug, Clone, Default)]
pub(crate) struct LogGroup {
    pub retention_days: Option<i32>,
    pub tags: Tags,
}

#[derive(Debug, Default)]
pub(crate) struct LogsState {
    pub groups: BTreeMap<String, LogGroup>,
}

impl LogsState {
    pub(crate) fn observed(&self) -> Vec<ObservedLogGroup> {
        self.groups
            .iter()
            .map(|(name, g)| ObservedLogGroup {
                name: name.clone(),
                retention_days: g.retention_days,
                tags: g.tags.clone(),
            })
            .collect()
    }
}

fn missing() -> CloudError {
    CloudError::NotFound(
        "ResourceNotFoundException: The specified log group does not exist.".into(),
    )
}

impl World {
    fn log_group_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:logs:{}:{ACCOUNT}:log-group:{name}",
            self.cfg.region
        )
    }

    /// DescribeLogGroups alone: names and retention, `tags` left empty.
    pub(crate) fn logs_list(&mut self, prefix: &str) -> CloudResult<Vec<ObservedLogGroup>> {
        let found: Vec<ObservedLogGroup> = self
            .logs
            .observed()
            .into_iter()
            .filter(|g| g.name.starts_with(prefix))
            .map(|g| ObservedLogGroup {
                tags: Tags::new(),
                ..g
            })
            .collect();
        let resource = self.log_group_arn(&format!("{prefix}*"));
        for _ in 0..Self::pages(found.len(), 50) {
            self.gate(Op::DescribeLogGroups, &resource)?;
        }
        Ok(found)
    }

    /// ListTagsForResource on one group; `None` when it does not exist.
    pub(crate) fn logs_tags(&mut self, name: &str) -> CloudResult<Option<Tags>> {
        let arn = self.log_group_arn(name);
        self.gate(Op::ListTagsForResource, &arn)?;
        Ok(self.logs.groups.get(name).map(|g| g.tags.clone()))
    }

    /// CreateLogGroup (with tags) then PutRetentionPolicy, as an adapter
    /// must: if the second request fails the group exists without
    /// retention, exactly as in AWS.
    pub(crate) fn logs_create(
        &mut self,
        name: &str,
        retention: i32,
        tags: &Tags,
    ) -> CloudResult<()> {
        let arn = self.log_group_arn(name);
        self.gate(Op::CreateLogGroup, &arn)?;
        if !tags.is_empty() {
            self.authorize(&LOGS_TAG_RESOURCE.action(), &arn)?;
        }
        if !is_log_group_name(name) {
            return Err(invalid(
                "InvalidParameterException",
                format!("logGroupName '{name}' must match [\\.\\-_/#A-Za-z0-9]{{1,512}}"),
            ));
        }
        if self.logs.groups.contains_key(name) {
            return Err(CloudError::AlreadyExists(
                "ResourceAlreadyExistsException: The specified log group already exists".into(),
            ));
        }
        let group = LogGroup {
            retention_days: None,
            tags: tags.clone(),
        };
        self.logs.groups.insert(name.to_string(), group);
        self.applied(Op::CreateLogGroup)?;
        self.logs_set_retention(name, retention)
    }

    pub(crate) fn logs_set_retention(&mut self, name: &str, days: i32) -> CloudResult<()> {
        let arn = self.log_group_arn(name);
        self.gate(Op::PutRetentionPolicy, &arn)?;
        if !RETENTION_DAYS.contains(&days) {
            return Err(invalid(
                "InvalidParameterException",
                format!(
                    "retentionInDays {days} is not one of the allowed values {RETENTION_DAYS:?}"
                ),
            ));
        }
        let group = self.logs.groups.get_mut(name).ok_or_else(missing)?;
        group.retention_days = Some(days);
        self.applied(Op::PutRetentionPolicy)
    }

    pub(crate) fn logs_delete(&mut self, name: &str) -> CloudResult<()> {
        let arn = self.log_group_arn(name);
        self.gate(Op::DeleteLogGroup, &arn)?;
        match self.logs.groups.remove(name) {
            Some(_) => self.applied(Op::DeleteLogGroup),
            // What AWS answers, and what the port calls success.
            None => gone_is_fine(Err(missing())),
        }
    }
}
