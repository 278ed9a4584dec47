//! ECS task definitions: families of numbered revisions, ACTIVE or INACTIVE.

use crate::config::ACCOUNT;
use crate::world::{World, invalid};
use previewd_core::naming::is_ecs_name;
use previewd_core::observed::ObservedTaskDefinition;
use previewd_core::operations::{ECS_TAG_RESOURCE, Op};
use previewd_core::ports::CloudResult;
use previewd_core::render::TaskDefinition;
use std::collections::BTreeMap;

/// One revision of a family. Deregistered revisions stay, INACTIVE, and
/// still count: revision numbers never repeat.
#[derive(Debug, Clone)]
pub(crate) struct Revision {
    pub arn: String,
    pub revision: i64,
    pub active: bool,
    pub def: TaskDefinition,
}

impl Revision {
    pub(crate) fn observed(&self) -> ObservedTaskDefinition {
        ObservedTaskDefinition {
            arn: self.arn.clone(),
            family: self.def.family.clone(),
            revision: self.revision,
            tags: self.def.tags.clone(),
        }
    }
}

/// Every family's revisions, oldest first.
pub(crate) type Families = BTreeMap<String, Vec<Revision>>;

/// Finds a revision by full ARN, `family:revision`, or `family` (the latest
/// ACTIVE one), as ECS accepts all three.
pub(crate) fn lookup<'a>(families: &'a Families, reference: &str) -> Option<&'a Revision> {
    let short = reference
        .rsplit("task-definition/")
        .next()
        .unwrap_or(reference);
    let (family, number) = match short.rsplit_once(':') {
        Some((f, n)) => (f, n.parse::<i64>().ok()),
        None => (short, None),
    };
    let revisions = families.get(family)?;
    match number {
        Some(n) => revisions.iter().find(|r| r.revision == n),
        None => revisions.iter().rev().find(|r| r.active),
    }
}

impl World {
    fn td_arn(&self, family: &str, revision: impl std::fmt::Display) -> String {
        format!(
            "arn:aws:ecs:{}:{ACCOUNT}:task-definition/{family}:{revision}",
            self.cfg.region
        )
    }

    pub(crate) fn find_revision(&self, reference: &str) -> Option<&Revision> {
        lookup(&self.ecs.families, reference)
    }

    /// The ARN of a revision a new deployment may use, or ECS's refusal.
    pub(crate) fn usable_revision(&self, reference: &str) -> CloudResult<String> {
        match self.find_revision(reference) {
            None => Err(invalid(
                "ClientException",
                format!("Unable to describe task definition {reference}."),
            )),
            Some(r) if !r.active => Err(invalid(
                "ClientException",
                format!("TaskDefinition {} is inactive", r.arn),
            )),
            Some(r) => Ok(r.arn.clone()),
        }
    }

    pub(crate) fn ecs_register(
        &mut self,
        td: &TaskDefinition,
    ) -> CloudResult<ObservedTaskDefinition> {
        let resource = self.td_arn(&td.family, "*");
        self.gate(Op::RegisterTaskDefinition, &resource)?;
        if !td.tags.is_empty() {
            self.authorize(&ECS_TAG_RESOURCE.action(), &resource)?;
        }
        if !is_ecs_name(&td.family) {
            return Err(invalid(
                "ClientException",
                format!(
                    "Family '{}' must be up to 255 letters, numbers, hyphens and underscores",
                    td.family
                ),
            ));
        }
        let next = self
            .ecs
            .families
            .get(&td.family)
            .and_then(|revs| revs.last())
            .map_or(1, |r| r.revision + 1);
        let revision = Revision {
            arn: self.td_arn(&td.family, next),
            revision: next,
            active: true,
            def: td.clone(),
        };
        let observed = revision.observed();
        self.ecs
            .families
            .entry(td.family.clone())
            .or_default()
            .push(revision);
        self.applied(Op::RegisterTaskDefinition)?;
        Ok(observed)
    }

    /// One DeregisterTaskDefinition per ACTIVE revision; stops at the first
    /// refusal, leaving the rest ACTIVE for the next attempt.
    pub(crate) fn ecs_deregister(&mut self, family: &str) -> CloudResult<()> {
        let active: Vec<(i64, String)> = self
            .ecs
            .families
            .get(family)
            .map(|revs| {
                revs.iter()
                    .filter(|r| r.active)
                    .map(|r| (r.revision, r.arn.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (revision, arn) in active {
            self.gate(Op::DeregisterTaskDefinition, &arn)?;
            let revs = self.ecs.families.get_mut(family).expect("listed above");
            if let Some(r) = revs.iter_mut().find(|r| r.revision == revision) {
                r.active = false;
            }
            self.applied(Op::DeregisterTaskDefinition)?;
        }
        Ok(())
    }

    /// ListTaskDefinitions (ACTIVE, `familyPrefix`), 100 to a page, kept
    /// to the family exactly.
    pub(crate) fn ecs_active_revisions(&mut self, family: &str) -> CloudResult<Vec<String>> {
        let listed: Vec<(String, String)> = self
            .ecs
            .families
            .iter()
            .filter(|(name, _)| name.starts_with(family))
            .flat_map(|(name, revs)| {
                revs.iter()
                    .filter(|r| r.active)
                    .map(move |r| (name.clone(), r.arn.clone()))
            })
            .collect();
        for _ in 0..Self::pages(listed.len(), 100) {
            self.gate(Op::ListTaskDefinitions, "*")?;
        }
        Ok(listed
            .into_iter()
            .filter(|(name, _)| name == family)
            .map(|(_, arn)| arn)
            .collect())
    }

    /// DeregisterTaskDefinition of one revision (an ARN or `family:N`).
    pub(crate) fn ecs_deregister_one(&mut self, reference: &str) -> CloudResult<()> {
        let Some(found) = self.find_revision(reference).map(|r| r.arn.clone()) else {
            self.gate(Op::DeregisterTaskDefinition, reference)?;
            return Err(invalid(
                "ClientException",
                format!("Unable to describe task definition {reference}."),
            ));
        };
        self.gate(Op::DeregisterTaskDefinition, &found)?;
        for revs in self.ecs.families.values_mut() {
            if let Some(r) = revs.iter_mut().find(|r| r.arn == found) {
                r.active = false;
            }
        }
        self.applied(Op::DeregisterTaskDefinition)
    }

    pub(crate) fn ecs_task_definition(
        &mut self,
        family: &str,
    ) -> CloudResult<Option<ObservedTaskDefinition>> {
        let resource = match family.rsplit_once('/') {
            Some(_) => family.to_string(),
            None => self.td_arn(family, "*"),
        };
        self.gate(Op::DescribeTaskDefinition, &resource)?;
        // Like DescribeTaskDefinition: a family means its latest ACTIVE
        // revision; `family:N` or an ARN means that revision, even INACTIVE.
        if family.contains(':') {
            return Ok(self.find_revision(family).map(Revision::observed));
        }
        let latest = self
            .ecs
            .families
            .get(family)
            .and_then(|revs| revs.iter().rev().find(|r| r.active))
            .map(Revision::observed);
        Ok(latest)
    }

    pub(crate) fn ecs_families(&mut self, prefix: &str) -> CloudResult<Vec<String>> {
        let found: Vec<String> = self
            .ecs
            .families
            .iter()
            .filter(|(name, revs)| name.starts_with(prefix) && revs.iter().any(|r| r.active))
            .map(|(name, _)| name.clone())
            .collect();
        // ListTaskDefinitionFamilies pages 100 at a time.
        for _ in 0..Self::pages(found.len(), 100) {
            self.gate(Op::ListTaskDefinitionFamilies, "*")?;
        }
        Ok(found)
    }
}
