//! What a phase change owes the outside world: the GitHub deployment
//! status and the callback, decided from an outbox `report` payload.

use crate::model::Phase;
use serde::{Deserialize, Serialize};

/// The payload the controller enqueues with every phase change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub project: String,
    pub branch: String,
    pub generation: i64,
    /// `deploy` or `destroy`.
    pub action: String,
    pub phase: Phase,
    pub url: Option<String>,
    pub message: Option<String>,
    pub commit_sha: Option<String>,
    pub ai_run_id: Option<String>,
    pub callback_url: Option<String>,
}

/// GitHub deployment status states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Queued,
    InProgress,
    Success,
    Failure,
    Error,
    Inactive,
}

/// Which deployment a status goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This generation's deployment, created if it does not exist yet.
    ThisGeneration,
    /// The newest deployment of the preview (a destroy has none of its own).
    Newest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusStep {
    pub target: Target,
    pub state: DeploymentState,
    pub environment_url: Option<String>,
    pub description: String,
}

/// The callback body, exactly as the QA tool receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackBody {
    pub ai_run_id: Option<String>,
    pub branch: String,
    pub commit_sha: Option<String>,
    pub action: String,
    pub state: String,
    pub environment_url: Option<String>,
    pub description: String,
}

/// What to send for one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub status: Option<StatusStep>,
    /// The URL and body, when the preview reached an end state and a
    /// callback URL was given.
    pub callback: Option<(String, CallbackBody)>,
}

/// Decides the GitHub status and the callback a report owes.
pub fn plan(r: &Report) -> Plan {
    let deploy = r.action == "deploy";
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
            Some("success"),
        ),
        (true, Phase::Failed) => (
            Some(DeploymentState::Failure),
            Target::ThisGeneration,
            Some("failure"),
        ),
        (false, Phase::Deleted) => (
            Some(DeploymentState::Inactive),
            Target::Newest,
            Some("inactive"),
        ),
        (false, Phase::Failed) => (Some(DeploymentState::Error), Target::Newest, Some("error")),
        // Deleting, and phases a plan never reports for its action.
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
                action: r.action.clone(),
                state: state.into(),
                environment_url: url,
                description,
            },
        )),
        _ => None,
    };
    Plan { status, callback }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(action: &str, phase: Phase) -> Report {
        Report {
            project: "acme/shop".into(),
            branch: "qanote/issue-42".into(),
            generation: 1,
            action: action.into(),
            phase,
            url: Some("https://issue-42-preview.example.com".into()),
            message: Some("preview is ready".into()),
            commit_sha: Some("abc1234".into()),
            ai_run_id: Some("run-7".into()),
            callback_url: Some("https://qa.example.com/hook".into()),
        }
    }

    #[test]
    fn ready_is_success_with_the_url_and_a_callback() {
        let p = plan(&report("deploy", Phase::Ready));
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
    fn progress_has_no_callback_and_no_url() {
        let p = plan(&report("deploy", Phase::Provisioning));
        let s = p.status.unwrap();
        assert_eq!(
            (s.state, s.environment_url),
            (DeploymentState::InProgress, None)
        );
        assert!(p.callback.is_none());
    }

    #[test]
    fn destroy_marks_the_newest_deployment_inactive() {
        let p = plan(&report("destroy", Phase::Deleted));
        let s = p.status.unwrap();
        assert_eq!(
            (s.state, s.target),
            (DeploymentState::Inactive, Target::Newest)
        );
        assert_eq!(p.callback.unwrap().1.state, "inactive");
        assert_eq!(
            plan(&report("destroy", Phase::Deleting)),
            Plan {
                status: None,
                callback: None
            }
        );
    }
}
