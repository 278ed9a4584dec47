//! What a phase change owes the outside world: the GitHub deployment
//! status and the callback, decided from an outbox `report` payload.

use crate::model::{Desired, Phase, Preview, PreviewStatus, text_enum};
use serde::{Deserialize, Serialize};

/// What a dispatch asked for, spelled `deploy` or `destroy` in the outbox
/// payload and the callback body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Destroy,
}

text_enum!(Action {
    Deploy = "deploy",
    Destroy = "destroy",
});

impl Action {
    pub const ALL: [Action; 2] = [Action::Deploy, Action::Destroy];
}

/// The payload the controller enqueues with every phase change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub project: String,
    pub branch: String,
    pub generation: i64,
    pub action: Action,
    pub phase: Phase,
    pub url: Option<String>,
    pub message: Option<String>,
    pub commit_sha: Option<String>,
    pub ai_run_id: Option<String>,
    pub callback_url: Option<String>,
    /// An earlier generation this one replaced before it reached an end
    /// state (Ready or Failed): its deployment is left `in_progress` or
    /// `queued` otherwise, as statuses use `auto_inactive: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded: Option<i64>,
}

impl Report {
    /// The description of the GitHub deployment made for this report's
    /// generation of `commit`.
    pub fn deployment_description(&self, commit: &str) -> String {
        format!(
            "preview of {} at {}",
            self.branch,
            commit.chars().take(12).collect::<String>()
        )
    }

    /// The key a callback carries so that the receiver can drop a
    /// redelivery: the same preview, generation and state give the same key.
    pub fn idempotency_key(&self, state: DeploymentState) -> String {
        format!(
            "{}:{}:{}:{}",
            self.project, self.branch, self.generation, state
        )
    }
}

impl Report {
    /// The report of `p` reaching status `s`.
    pub fn of(p: &Preview, s: &PreviewStatus) -> Report {
        Report {
            project: p.key.project.clone(),
            branch: p.key.branch.clone(),
            generation: p.generation,
            action: if p.desired == Desired::Present {
                Action::Deploy
            } else {
                Action::Destroy
            },
            phase: s.phase,
            url: s.url.clone(),
            message: s.message.clone(),
            commit_sha: p.spec.commit_sha.clone(),
            ai_run_id: p.spec.ai_run_id.clone(),
            callback_url: p.spec.callback_url.clone(),
            superseded: superseded(p),
        }
    }

    /// The report a `once` run owes when it stops waiting at `phase` (with
    /// `message`) after `waited_secs`: the attempt failed, and the
    /// description names the phase it reached. Its plan is a `failure`
    /// status (an `error` for a destroy) and the callback.
    pub fn timed_out(mut self, phase: Phase, message: &str, waited_secs: u64) -> Report {
        self.message = Some(format!(
            "timed out after {waited_secs}s in {phase}: {message}"
        ));
        self.phase = Phase::Failed;
        self.url = None;
        self
    }
}

/// The generation `p`'s current one replaced before it reached an end
/// state: the one last observed, when it was still converging (Pending or
/// Provisioning) and the row now asks for a later one. A Ready or Failed
/// generation already has its end state; a generation never observed has
/// no deployment.
pub fn superseded(p: &Preview) -> Option<i64> {
    let s = &p.status;
    let converging = matches!(s.phase, Phase::Pending | Phase::Provisioning);
    (converging && s.observed_generation >= 1 && s.observed_generation < p.generation)
        .then_some(s.observed_generation)
}

/// The states a GitHub deployment status can take, in GitHub's spelling;
/// a callback's `state` uses the same words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Queued,
    InProgress,
    Success,
    Failure,
    Error,
    Inactive,
}

text_enum!(DeploymentState {
    Queued = "queued",
    InProgress = "in_progress",
    Success = "success",
    Failure = "failure",
    Error = "error",
    Inactive = "inactive",
});

impl DeploymentState {
    pub const ALL: [DeploymentState; 6] = [
        DeploymentState::Queued,
        DeploymentState::InProgress,
        DeploymentState::Success,
        DeploymentState::Failure,
        DeploymentState::Error,
        DeploymentState::Inactive,
    ];
}

/// Compares with GitHub's spelling, so `state == "success"` reads as before.
impl PartialEq<&str> for DeploymentState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Which deployment a status goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This generation's deployment, created if it does not exist yet.
    ThisGeneration,
    /// The newest deployment of the preview (a destroy has none of its own).
    Newest,
    /// The deployment of this earlier generation, if one was made.
    Generation(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusStep {
    pub target: Target,
    pub state: DeploymentState,
    pub environment_url: Option<String>,
    pub description: String,
}

/// The callback body, exactly as the QA tool receives it; `state` uses
/// GitHub's deployment status words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackBody {
    pub ai_run_id: Option<String>,
    pub branch: String,
    pub commit_sha: Option<String>,
    pub action: Action,
    pub state: DeploymentState,
    pub environment_url: Option<String>,
    /// [`plan`] always sets it; `None` is sent as `null`.
    pub description: Option<String>,
}

/// What to send for one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub status: Option<StatusStep>,
    /// The URL and body, when the preview reached an end state and a
    /// callback URL was given.
    pub callback: Option<(String, CallbackBody)>,
    /// `inactive` for a generation superseded before its end state; sent
    /// before `status`.
    pub superseded: Option<StatusStep>,
}

/// Decides the GitHub status and the callback a report owes.
pub fn plan(r: &Report) -> Plan {
    let deploy = r.action == Action::Deploy;
    let description = r.message.clone().unwrap_or_else(|| r.phase.to_string());
    let (state, target, end) = match (deploy, r.phase) {
        (true, Phase::Pending) => (Some(DeploymentState::Queued), Target::ThisGeneration, None),
        (true, Phase::Provisioning) => (
            Some(DeploymentState::InProgress),
            Target::ThisGeneration,
            None,
        ),
        (true, Phase::Ready) => (
            Some(DeploymentState::Success),
            Target::ThisGeneration,
            Some(DeploymentState::Success),
        ),
        (true, Phase::Failed) => (
            Some(DeploymentState::Failure),
            Target::ThisGeneration,
            Some(DeploymentState::Failure),
        ),
        (false, Phase::Deleted) => (
            Some(DeploymentState::Inactive),
            Target::Newest,
            Some(DeploymentState::Inactive),
        ),
        (false, Phase::Failed) => (
            Some(DeploymentState::Error),
            Target::Newest,
            Some(DeploymentState::Error),
        ),
        // Deleting, and phases a plan never reports for its action.
        // Sleeping is never reported (decide() owes no report for Ready <->
        // Sleeping): were it, nothing would change the `success` GitHub
        // holds, and no callback would go out.
        _ => (None, Target::Newest, None),
    };
    let url = (state == Some(DeploymentState::Success))
        .then(|| r.url.clone())
        .flatten();
    let status = state.map(|state| StatusStep {
        target,
        state,
        environment_url: url.clone(),
        description: description.clone(),
    });
    let callback = match (end, &r.callback_url) {
        (Some(state), Some(cb)) => Some((
            cb.clone(),
            CallbackBody {
                ai_run_id: r.ai_run_id.clone(),
                branch: r.branch.clone(),
                commit_sha: r.commit_sha.clone(),
                action: r.action,
                state,
                environment_url: url,
                description: Some(description),
            },
        )),
        _ => None,
    };
    let superseded = r.superseded.map(|g| StatusStep {
        target: Target::Generation(g),
        state: DeploymentState::Inactive,
        environment_url: None,
        description: format!("superseded by generation {}", r.generation),
    });
    Plan {
        status,
        callback,
        superseded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(action: Action, phase: Phase) -> Report {
        Report {
            project: "acme/shop".into(),
            branch: "qanote/issue-42".into(),
            generation: 1,
            action,
            phase,
            url: Some("https://issue-42-preview.example.com".into()),
            message: Some("preview is ready".into()),
            commit_sha: Some("abc1234".into()),
            ai_run_id: Some("run-7".into()),
            callback_url: Some("https://qa.example.com/hook".into()),
            superseded: None,
        }
    }

    #[test]
    fn a_deployment_names_its_branch_and_short_commit_and_a_callback_its_key() {
        let r = report(Action::Deploy, Phase::Ready);
        assert_eq!(
            r.deployment_description("0123456789abcdef0123"),
            "preview of qanote/issue-42 at 0123456789ab"
        );
        assert_eq!(
            r.deployment_description("abc1234"),
            "preview of qanote/issue-42 at abc1234"
        );
        assert_eq!(
            r.idempotency_key(DeploymentState::Success),
            "acme/shop:qanote/issue-42:1:success"
        );
    }

    #[test]
    fn ready_is_success_with_the_url_and_a_callback() {
        let p = plan(&report(Action::Deploy, Phase::Ready));
        let s = p.status.unwrap();
        assert_eq!(
            (s.state, s.target),
            (DeploymentState::Success, Target::ThisGeneration)
        );
        assert_eq!(
            s.environment_url.as_deref(),
            Some("https://issue-42-preview.example.com")
        );
        let (url, body) = p.callback.unwrap();
        assert_eq!(url, "https://qa.example.com/hook");
        assert_eq!(
            (body.state.as_str(), body.ai_run_id.as_deref()),
            ("success", Some("run-7"))
        );
    }

    #[test]
    fn a_timeout_is_a_failure_naming_the_phase_reached_with_a_callback() {
        let r = report(Action::Deploy, Phase::Ready).timed_out(
            Phase::Provisioning,
            "waiting for healthy targets",
            900,
        );
        let p = plan(&r);
        let s = p.status.unwrap();
        assert_eq!(
            (s.state, s.target, s.environment_url),
            (DeploymentState::Failure, Target::ThisGeneration, None)
        );
        assert_eq!(
            s.description,
            "timed out after 900s in Provisioning: waiting for healthy targets"
        );
        let (_, body) = p.callback.unwrap();
        assert_eq!(
            (body.state, body.ai_run_id.as_deref()),
            (DeploymentState::Failure, Some("run-7"))
        );
        let destroy = report(Action::Destroy, Phase::Deleting).timed_out(Phase::Deleting, "x", 1);
        assert_eq!(plan(&destroy).status.unwrap().state, DeploymentState::Error);
    }

    #[test]
    fn a_generation_replaced_while_converging_is_marked_inactive() {
        let key = crate::PreviewKey::new("acme/shop", "qanote/issue-42").unwrap();
        let mut p = Preview::fresh(key, "s", "h", Default::default(), chrono::Utc::now());
        for phase in Phase::ALL {
            for (observed, generation) in [(0, 1), (1, 1), (1, 2), (2, 4)] {
                p.status.phase = phase;
                (p.status.observed_generation, p.generation) = (observed, generation);
                let converging = matches!(phase, Phase::Pending | Phase::Provisioning);
                let want =
                    (converging && observed >= 1 && observed < generation).then_some(observed);
                assert_eq!(superseded(&p), want, "{phase} {observed} {generation}");
            }
        }
        let mut r = report(Action::Deploy, Phase::Provisioning);
        r.generation = 3;
        r.superseded = Some(2);
        let step = plan(&r).superseded.unwrap();
        assert_eq!(
            (step.target, step.state, step.description.as_str()),
            (
                Target::Generation(2),
                DeploymentState::Inactive,
                "superseded by generation 3"
            )
        );
    }

    #[test]
    fn progress_has_no_callback_and_no_url() {
        let p = plan(&report(Action::Deploy, Phase::Provisioning));
        let s = p.status.unwrap();
        assert_eq!(
            (s.state, s.environment_url),
            (DeploymentState::InProgress, None)
        );
        assert!(p.callback.is_none());
    }

    #[test]
    fn destroy_marks_the_newest_deployment_inactive() {
        let p = plan(&report(Action::Destroy, Phase::Deleted));
        let s = p.status.unwrap();
        assert_eq!(
            (s.state, s.target),
            (DeploymentState::Inactive, Target::Newest)
        );
        assert_eq!(p.callback.unwrap().1.state, "inactive");
        assert_eq!(
            plan(&report(Action::Destroy, Phase::Deleting)),
            Plan {
                status: None,
                callback: None,
                superseded: None,
            }
        );
    }

    #[test]
    fn every_action_and_state_is_spelled_on_the_wire_as_before() {
        let words = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        for a in Action::ALL {
            let json = serde_json::to_value(a).unwrap();
            assert_eq!(words(json.clone()), a.as_str());
            assert_eq!(serde_json::from_value::<Action>(json).unwrap(), a);
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert_eq!(Action::ALL.map(Action::as_str), ["deploy", "destroy"]);
        for s in DeploymentState::ALL {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(words(json.clone()), s.as_str());
            assert_eq!(serde_json::from_value::<DeploymentState>(json).unwrap(), s);
            assert_eq!(s.as_str().parse::<DeploymentState>(), Ok(s));
        }
        assert_eq!(
            DeploymentState::ALL.map(DeploymentState::as_str),
            [
                "queued",
                "in_progress",
                "success",
                "failure",
                "error",
                "inactive"
            ]
        );
    }

    /// Rows already in the outbox were written with `action` as a string.
    #[test]
    fn a_stored_report_payload_still_reads_and_writes_the_same() {
        let stored = serde_json::json!({
            "project": "acme/shop", "branch": "qanote/issue-42", "generation": 3,
            "action": "destroy", "phase": "Deleted", "url": null, "message": null,
            "commit_sha": null, "ai_run_id": "run-7",
            "callback_url": "https://qa.example.com/hook",
        });
        let r: Report = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!((r.action, r.phase), (Action::Destroy, Phase::Deleted));
        assert_eq!(serde_json::to_value(&r).unwrap(), stored);
        // previewd never wrote another action; such a payload is refused
        // as a bad one, by name.
        let mut odd = stored;
        odd["action"] = "redeploy".into();
        let err = serde_json::from_value::<Report>(odd).unwrap_err();
        assert!(err.to_string().contains("redeploy"), "{err}");
    }

    #[test]
    fn the_callback_body_is_the_json_the_qa_tool_reads() {
        let (_, body) = plan(&report(Action::Deploy, Phase::Failed))
            .callback
            .unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "ai_run_id": "run-7",
                "branch": "qanote/issue-42",
                "commit_sha": "abc1234",
                "action": "deploy",
                "state": "failure",
                "environment_url": null,
                "description": "preview is ready",
            })
        );
    }
}
