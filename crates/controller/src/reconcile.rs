//! One reconcile pass over one preview: observe, place it on a listener of
//! the pool (`previewd_core::pool::place`), plan and apply
//! ([`Reconciler::attempt`]), then decide the status to write
//! ([`Reconciler::decide`], `previewd_core::decide`).

use crate::execute::{Executor, Subject};
use crate::observe::{Freshness, Observer, ReadService};
use crate::{Cloud, ControllerConfig, DnsBatcher};
use previewd_core::decide::{
    ExecuteError, Outcome, cached_look_age, check_ownership, decide, fresh_first, must_confirm,
    ownership_arns, reserved_priority,
};
use previewd_core::model::{Desired, Preview, StatusUpdate};
use previewd_core::plan::{Change, Observation, Plan, Verdict, plan};
use previewd_core::pool::{self, Placement, Pool, Reservation, Seat};
use previewd_core::ports::Store;
use previewd_core::pr_comment;
use previewd_core::projects::Projects;
use previewd_core::render::{Template, render};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::time::Instant;

/// A listener and a rule priority on it.
type Slot = (String, i32);

/// Holds a priority in [`Reconciler::choosing`] until the pass ends (its
/// reservation is in the store by then, or the pass failed).
struct Chosen<'a>(&'a std::sync::Mutex<BTreeSet<Slot>>, Slot);

impl Drop for Chosen<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("not poisoned").remove(&self.1);
    }
}

/// Everything a pass needs, shared by all workers.
pub struct Reconciler {
    pub store: Arc<dyn Store>,
    pub cloud: Cloud,
    pub observer: Observer,
    pub dns: DnsBatcher,
    pub template: Arc<Template>,
    /// The listeners previews are placed on (a pool of one by default).
    pub pool: Arc<Pool>,
    /// Every project's template; a preview is built, observed and torn
    /// down with its own project's (`Reconciler::with_projects`).
    pub projects: Arc<Projects>,
    pub config: ControllerConfig,
    /// Notified when a status write enqueued reports, so the delivery
    /// worker sends them at once rather than at its next poll.
    pub reported: Arc<tokio::sync::Notify>,
    /// Listener rule priorities planned by passes under way in this
    /// process: taken for the others, and counted as placed there.
    choosing: std::sync::Mutex<BTreeSet<Slot>>,
}

impl Reconciler {
    pub fn new(
        store: Arc<dyn Store>,
        cloud: Cloud,
        template: Arc<Template>,
        config: ControllerConfig,
    ) -> Self {
        Self {
            observer: Observer::new(
                cloud.clone(),
                template.clone(),
                config.cache_max_age,
                config.listing_min_interval,
                config.elb_tags_max_age,
            ),
            dns: DnsBatcher::spawn(cloud.dns.clone(), config.dns_batch_window),
            store,
            cloud,
            pool: Arc::new(Pool::single(&template)),
            projects: Arc::new(Projects::uniform(template.clone())),
            template,
            config,
            reported: Arc::new(tokio::sync::Notify::new()),
            choosing: std::sync::Mutex::new(BTreeSet::new()),
        }
    }

    /// Places previews on the listeners of `pool` instead of the
    /// template's one.
    pub fn with_pool(mut self, pool: Arc<Pool>) -> Self {
        self.observer = self.observer.with_pool(pool.clone());
        self.pool = pool;
        self
    }

    /// Serves `projects`: each preview with its own project's template. A
    /// preview of a project not among them is left alone (see
    /// [`Reconciler::template_for`]).
    pub fn with_projects(mut self, projects: Arc<Projects>) -> Self {
        self.observer.set_projects(projects.clone());
        self.projects = projects;
        self
    }

    /// The template of `p`'s project. A project the configuration no
    /// longer names has no template here: its names (prefix, domain) are
    /// unknown, and building it with another project's would touch the
    /// wrong resources, so its pass fails, retryably, saying so.
    pub fn template_for(&self, p: &Preview) -> Result<&Arc<Template>, ExecuteError> {
        self.projects
            .template(&p.key.project)
            .ok_or_else(|| ExecuteError::Cloud {
                step: "Project",
                source: previewd_core::CloudError::Transient {
                    code: "ProjectNotConfigured".into(),
                    message: format!(
                        "project {} is not configured: its previews are left as they are; add it back as a [[projects]] entry (retired = true to tear them down)",
                        p.key.project
                    ),
                },
            })
    }

    /// Observes, plans and applies for one preview (the pass up to the
    /// decision), and says how it ended. Never asks why it was woken: it
    /// reads the row and AWS and acts on the difference. `service` is the
    /// preview's service when the caller read it for a batch; `began` is
    /// when the pass began (before its row was claimed): a fresh
    /// observation is one fetched after it.
    pub async fn attempt(
        &self,
        p: &Preview,
        service: Option<ReadService>,
        began: Instant,
    ) -> Outcome {
        match self.pass(p, service, began).await {
            Ok(verdict) => Outcome::Planned(verdict),
            Err(e) => Outcome::Error(e),
        }
    }

    /// The status, schedule and reports to record after an attempt (with
    /// the sticky comment's messages when `pr_comment` is on).
    pub fn decide(&self, p: &Preview, outcome: &Outcome) -> StatusUpdate {
        let url = match self.template_for(p) {
            Ok(t) => render(t, p).url,
            Err(_) => p.status.url.clone().unwrap_or_default(),
        };
        let now = (self.config.clock)();
        let mut update: StatusUpdate =
            decide(p, outcome, &url, &self.config.policy, now, crate::jitter()).into();
        let comments = pr_comment::messages(self.config.pr_comment, &update.outbox);
        update.outbox.extend(comments);
        update
    }

    async fn pass(
        &self,
        p: &Preview,
        service: Option<ReadService>,
        began: Instant,
    ) -> Result<Verdict, ExecuteError> {
        // Names do not depend on the listener: one rendering observes.
        let template = self.template_for(p)?.clone();
        let w = render(&template, p);
        let observe_err = |source| ExecuteError::Cloud {
            step: "Observe",
            source,
        };
        let fresh = fresh_first(p, self.observer.listings_pressed());
        let first_look = if fresh {
            Freshness::After(began)
        } else {
            Freshness::Within(cached_look_age(
                p,
                (self.config.clock)(),
                self.config.cache_max_age,
                self.config.policy.resync_interval,
            ))
        };
        let recorded = self
            .pool
            .recorded(p.listener_arn.as_deref(), p.rule_priority)
            .map(str::to_owned);
        let o = self
            .observer
            .observe(p, &w, service.clone(), first_look, recorded.as_deref())
            .await
            .map_err(observe_err)?;
        let pending = self.choosing_now();
        let (listener, first, o) = match self.plan_placed(&template, p, o, &pending, None) {
            Placed::Waiting(why) => return Ok(Verdict::Waiting(why)),
            Placed::Planned {
                listener,
                plan,
                observation,
            } => (listener, plan, *observation),
        };
        let mut choosing = None;
        let (listener, Plan { changes, verdict }) = if must_confirm(&first, p) {
            let o = if fresh {
                o
            } else {
                self.observer
                    .observe(p, &w, service, Freshness::After(began), Some(&listener))
                    .await
                    .map_err(observe_err)?
            };
            let held =
                self.store
                    .reservations(&p.key)
                    .await
                    .map_err(|source| ExecuteError::Store {
                        step: "ReservedPriorities",
                        source,
                    })?;
            // Passes planning at once would all pick the same lowest free
            // priority and all but one lose it, and all count the same
            // room on a listener; what passes still under way chose counts
            // as taken, decided under one lock.
            let mut pending = self.choosing.lock().expect("not poisoned");
            // A pass under way has its reservation in the store too
            // once it executed ReservePriority: counted once (a
            // priority is held once per listener).
            let mut all = held;
            all.extend(
                pending
                    .iter()
                    .map(|(l, prio)| Reservation {
                        listener_arn: l.clone(),
                        priority: *prio,
                    })
                    .collect::<Vec<_>>(),
            );
            all.sort_by(|a, b| (&a.listener_arn, a.priority).cmp(&(&b.listener_arn, b.priority)));
            all.dedup();
            match self.plan_placed(&template, p, o, &all, Some(&all)) {
                Placed::Waiting(why) => return Ok(Verdict::Waiting(why)),
                Placed::Planned { listener, plan, .. } => {
                    choosing =
                        reserved_priority(&plan.changes).map(|prio| (listener.clone(), prio));
                    pending.extend(choosing.clone());
                    (listener, plan)
                }
            }
        } else {
            (listener, first)
        };
        let _chosen = choosing.map(|slot| Chosen(&self.choosing, slot));
        if !changes.is_empty() {
            let names: Vec<&str> = changes.iter().map(|c| c.name()).collect();
            tracing::info!(key = %p.key, generation = p.generation, listener = %listener, changes = ?names, "applying plan");
            self.verify_ownership(p, &changes).await?;
            let executor = Executor {
                cloud: &self.cloud,
                dns: Some(&self.dns),
                store: self.store.as_ref(),
                listener: Some(&listener),
            };
            executor.execute(Subject::Preview(&p.key), &changes).await?;
        }
        Ok(verdict)
    }

    /// What passes under way in this process chose, as reservations.
    fn choosing_now(&self) -> Vec<Reservation> {
        self.choosing
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(l, prio)| Reservation {
                listener_arn: l.clone(),
                priority: *prio,
            })
            .collect()
    }

    /// Places the preview (`reservations`: every other row's, and those
    /// of passes under way) and plans for it on that listener; with
    /// `taken`, the priorities they hold there are not chosen again.
    /// A destroy is planned on the listener its rule is on (else the
    /// recorded one, else the first).
    fn plan_placed(
        &self,
        t: &Template,
        p: &Preview,
        mut o: Observation,
        reservations: &[Reservation],
        taken: Option<&[Reservation]>,
    ) -> Placed {
        let recorded = self
            .pool
            .recorded(p.listener_arn.as_deref(), p.rule_priority);
        let settled = pool::settled_on(&o.pool, &t.controller_id, &p.slug);
        let listener = match p.desired {
            Desired::Absent => settled
                .or(recorded)
                .unwrap_or(&self.pool.first().arn)
                .to_owned(),
            Desired::Present => {
                let mine = recorded.zip(p.rule_priority);
                let (mut fills, ahead) = pool::fills(&o.pool, reservations, mine);
                previewd_core::sleep::hold_sleepers(&mut fills, &o.pool, &self.config.wakers);
                let seat = Seat {
                    settled,
                    reserved: recorded.map(|r| (r, ahead)),
                };
                match pool::place(&self.pool, &fills, seat) {
                    Placement::Placed(l) => l,
                    Placement::Full(why) => return Placed::Waiting(why),
                }
            }
        };
        let Some(l) = self.pool.get(&listener) else {
            // A recorded listener no longer in the pool: its preview is
            // torn down from there all the same (the rules listing is
            // what plan reads), planned as on the first.
            return self.plan_on(t, p, o, self.pool.first().clone(), listener, taken);
        };
        o.listener = o
            .pool
            .get(&listener)
            .map(|s| (**s).clone())
            .unwrap_or_default();
        // Sleep forwards to the waker of this listener's own load balancer
        // (none there: the preview stays awake).
        o.listener.waker_target_group = self
            .config
            .wakers
            .for_listener(&listener)
            .map(str::to_owned);
        let l = l.clone();
        self.plan_on(t, p, o, l, listener, taken)
    }

    fn plan_on(
        &self,
        template: &Template,
        p: &Preview,
        o: Observation,
        l: pool::PoolListener,
        listener: String,
        taken: Option<&[Reservation]>,
    ) -> Placed {
        let t = pool::template_for(template, &l);
        let w = render(&t, p);
        let reserved: BTreeSet<i32> = taken
            .unwrap_or_default()
            .iter()
            .filter(|r| r.listener_arn == listener)
            .map(|r| r.priority)
            .collect();
        let moved = self
            .pool
            .recorded(p.listener_arn.as_deref(), p.rule_priority)
            != Some(listener.as_str());
        let plan = if moved && p.rule_priority.is_some() {
            // Its priority was held on another listener: one is reserved
            // here afresh (recorded with this listener).
            let mut here = p.clone();
            here.rule_priority = None;
            plan(&t, &here, &w, &o, &reserved)
        } else {
            plan(&t, p, &w, &o, &reserved)
        };
        Placed::Planned {
            listener,
            plan,
            observation: Box::new(o),
        }
    }

    /// Reads afresh the tags of the ELB resources a plan modifies or
    /// deletes (the listings' tags are remembered by ARN) and checks them
    /// with [`check_ownership`]. One DescribeTags, and only for a pass that
    /// touches an existing rule or target group.
    async fn verify_ownership(&self, p: &Preview, changes: &[Change]) -> Result<(), ExecuteError> {
        let found = self
            .observer
            .fresh_tags(&ownership_arns(changes))
            .await
            .map_err(|source| ExecuteError::Cloud {
                step: "VerifyOwnership",
                source,
            })?;
        // The controller id is the same in every project's template.
        check_ownership(changes, &found, &self.template.controller_id, &p.slug)
    }
}

/// A pass's plan on the listener it placed the preview on, or why no
/// listener of the pool can take it.
enum Placed {
    Waiting(String),
    Planned {
        listener: String,
        plan: Plan,
        observation: Box<Observation>,
    },
}
