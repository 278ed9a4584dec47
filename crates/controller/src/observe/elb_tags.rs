//! The ELB half of observation: rules and target groups as the ports list
//! them (without tags), and their tags kept by ARN (see the module above).

use super::{Observer, join};
use previewd_core::observed::{ListenerState, ObservedTargetGroup};
use previewd_core::operations::Op;
use previewd_core::ports::CloudResult;
use previewd_core::tagged;
use previewd_core::tags::Tags;
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
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
    /// ARN gone meanwhile is left out (and forgotten).
    pub(crate) async fn fresh_tags(&self, arns: &[String]) -> CloudResult<HashMap<String, Tags>> {
        if arns.is_empty() {
            return Ok(HashMap::new());
        }
        let read = Instant::now();
        let found = tagged::elb_tags(self.cloud.load_balancer.as_ref(), arns).await?;
        let mut book = self.elb_tags.lock().expect("not poisoned");
        for arn in arns {
            match found.get(arn) {
                Some(tags) => book.insert(arn.clone(), (tags.clone(), read)),
                None => book.remove(arn),
            };
        }
        Ok(found)
    }

    /// A listener's rules with their tags (the default rule has none).
    pub(super) async fn fetch_listener(&self, listener_arn: &str) -> CloudResult<ListenerState> {
        let mut l = self.cloud.load_balancer.listener(listener_arn).await?;
        // Its rules' ARNs all start so: the book forgets those of this
        // listener that left its listing, and no other listener's.
        let kind = format!(
            "{}/",
            listener_arn.replacen(":listener/", ":listener-rule/", 1)
        );
        let tags = self.listed_tags(&kind, &tagged::rule_arns(&l)).await?;
        tagged::attach_rule_tags(&mut l, tags);
        Ok(l)
    }

    /// The target groups under any of `prefixes` with their tags: one
    /// listing for every project (names are filtered on our side).
    pub(super) async fn fetch_target_groups(
        &self,
        prefixes: &[String],
    ) -> CloudResult<Vec<ObservedTargetGroup>> {
        let common = previewd_core::projects::common_prefix(prefixes);
        let mut tgs = self.cloud.load_balancer.target_groups(&common).await?;
        tgs.retain(|t| previewd_core::projects::under_any(&t.name, prefixes));
        let arns: Vec<String> = tgs.iter().map(|t| t.arn.clone()).collect();
        let tags = self.listed_tags(":targetgroup/", &arns).await?;
        tagged::attach_target_group_tags(&mut tgs, tags);
        Ok(tgs)
    }

    /// Every pool listener's listing: `focus` (all of them when `None`)
    /// as fresh as `not_before` asks, the others as a cached look may be
    /// (fetched after `cached`).
    pub(super) async fn listener_listings(
        &self,
        not_before: Instant,
        confirming: bool,
        focus: Option<&str>,
        cached: Instant,
    ) -> CloudResult<BTreeMap<String, Arc<ListenerState>>> {
        let fetches = self
            .listeners
            .iter()
            .map(|(arn, cache)| {
                let (nb, conf) = if focus.is_none_or(|f| f == arn) {
                    (not_before, confirming)
                } else {
                    (cached, true)
                };
                let pacing = self.pacing(Op::DescribeRules, conf);
                Box::pin(async move {
                    let (_, l) = cache.get(nb, pacing, || self.fetch_listener(arn)).await?;
                    Ok((arn.clone(), l))
                }) as join::Boxed<'_, (String, Arc<ListenerState>)>
            })
            .collect();
        Ok(join::all(fetches).await?.into_iter().collect())
    }
}
