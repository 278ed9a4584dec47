//! The ELB half of observation: rules and target groups listed without
//! their tags, and the tags kept by ARN (see the module above).

use super::Observer;
use previewd_core::CloudError;
use previewd_core::observed::{ListenerState, ObservedTargetGroup};
use previewd_core::ports::CloudResult;
use previewd_core::tags::Tags;
use std::collections::{HashMap, HashSet};
use tokio::time::Instant;

impl Observer {
    /// The tags of `arns`, from the book where read less than
    /// `elb_tags_max_age` ago, else from AWS; `kind` (`:listener-rule/`, `:targetgroup/`)
    /// names the listing `arns` is all of, so the book forgets that kind's
    /// ARNs that left it. An ARN missing from the answer no longer exists.
    async fn listed_tags(&self, kind: &str, arns: &[String]) -> CloudResult<HashMap<String, Tags>> {
        let now = Instant::now();
        let refresh = self.elb_tags_max_age;
        let mut out = HashMap::new();
        let missing: Vec<String> = {
            let mut book = self.elb_tags.lock().expect("not poisoned");
            let listed: HashSet<&String> = arns.iter().collect();
            book.retain(|arn, _| !arn.contains(kind) || listed.contains(arn));
            arns.iter()
                .filter(|arn| match book.get(*arn) {
                    Some((tags, read)) if now.duration_since(*read) < refresh => {
                        out.insert((*arn).clone(), tags.clone());
                        false
                    }
                    _ => true,
                })
                .cloned()
                .collect()
        };
        out.extend(self.fresh_tags(&missing).await?);
        Ok(out)
    }

    /// The tags of `arns` read from AWS now, and written to the book. An
    /// ARN gone meanwhile is left out: one DescribeTags fails as a whole
    /// when any ARN is unknown, so the batch is then asked one by one.
    pub(crate) async fn fresh_tags(&self, arns: &[String]) -> CloudResult<HashMap<String, Tags>> {
        if arns.is_empty() {
            return Ok(HashMap::new());
        }
        let read = Instant::now();
        let found: HashMap<String, Tags> = match self.cloud.load_balancer.tags(arns).await {
            Ok(found) => found.into_iter().collect(),
            Err(CloudError::NotFound(_)) => {
                let mut found = HashMap::new();
                for arn in arns {
                    match self
                        .cloud
                        .load_balancer
                        .tags(std::slice::from_ref(arn))
                        .await
                    {
                        Ok(one) => found.extend(one),
                        Err(CloudError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                found
            }
            Err(e) => return Err(e),
        };
        let mut book = self.elb_tags.lock().expect("not poisoned");
        for arn in arns {
            match found.get(arn) {
                Some(tags) => book.insert(arn.clone(), (tags.clone(), read)),
                None => book.remove(arn),
            };
        }
        Ok(found)
    }

    /// The listener's rules with their tags (the default rule has none).
    pub(super) async fn fetch_listener(&self) -> CloudResult<ListenerState> {
        let mut l = self.cloud.load_balancer.listener_without_tags().await?;
        let arns: Vec<String> = l
            .rules
            .iter()
            .filter(|r| r.priority.is_some())
            .map(|r| r.arn.clone())
            .collect();
        let mut tags = self.listed_tags(":listener-rule/", &arns).await?;
        l.rules.retain_mut(|r| {
            if r.priority.is_none() {
                return true;
            }
            match tags.remove(&r.arn) {
                Some(t) => {
                    r.tags = t;
                    true
                }
                // Deleted between the listing and its tags.
                None => false,
            }
        });
        Ok(l)
    }

    /// The target groups under `prefix` with their tags.
    pub(super) async fn fetch_target_groups(
        &self,
        prefix: &str,
    ) -> CloudResult<Vec<ObservedTargetGroup>> {
        let mut tgs = self
            .cloud
            .load_balancer
            .target_groups_without_tags(prefix)
            .await?;
        let arns: Vec<String> = tgs.iter().map(|t| t.arn.clone()).collect();
        let mut tags = self.listed_tags(":targetgroup/", &arns).await?;
        tgs.retain_mut(|t| match tags.remove(&t.arn) {
            Some(found) => {
                t.tags = found;
                true
            }
            None => false,
        });
        Ok(tgs)
    }
}
