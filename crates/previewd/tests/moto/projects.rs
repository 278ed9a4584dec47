//! Several projects in one previewd (issue 17, item 2): two `[[projects]]`
//! on moto, the same branch dispatched to each, GitHub's own example
//! webhook deliveries for each repository, and the statuses of each going
//! to its own repository on the fake GitHub of `daemon::fake_github`.

use crate::daemon::fake_github;
use crate::harness::{Daemon, Moto, find, ours};
use crate::{BRANCH, SHA1, SHA2};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "two-projects-webhook-secret";
const WEB: &str = "acme/web";
const API: &str = "acme/api";

/// Two projects over the harness's top-level sections: `acme/web` keeps
/// them as they are (prefix `pv`, host `issue-N-preview`); `acme/api` has
/// its own prefix, the same host pattern and its own image and TTL.
fn two_projects(config: String) -> String {
    let config = config.replace("[previews]\nproject = \"acme/shop\"\n", "");
    assert!(
        !config.contains("acme/shop"),
        "the harness changed: {config}"
    );
    format!(
        r#"{config}
[[projects]]
project = "{WEB}"
ttl_hours = 24

[[projects]]
project = "{API}"
ttl_hours = 48
[projects.naming]
prefix = "api"
[projects.container]
image = "registry.example.com/api:{{commit_sha}}"
"#
    )
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn dispatch(&self, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/dispatch", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn preview(&self, project: &str, branch: &str) -> Value {
        let resp = self
            .http
            .get(format!(
                "{}/v1/previews/{}?project={}",
                self.base,
                branch.replace('/', "%2F"),
                project.replace('/', "%2F")
            ))
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }

    async fn wait(&self, project: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let p = self.preview(project, BRANCH).await;
            if done(&p) {
                return p;
            }
            assert!(Instant::now() < deadline, "{project}: never {what}: {p:#}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn text(&self, path: &str) -> String {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        resp.text().await.unwrap()
    }

    /// Signs and sends one GitHub delivery.
    async fn webhook(&self, event: &str, id: &str, body: &Value) -> (u16, Value) {
        let raw = serde_json::to_string(body).unwrap();
        let sig = previewd_github::signature_header(SECRET.as_bytes(), raw.as_bytes());
        let resp = self
            .http
            .post(format!("{}/v1/github/webhook", self.base))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", id)
            .header("X-Hub-Signature-256", sig)
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }
}

/// GitHub's published example delivery `name`, for `repository`.
fn example(name: &str, repository: &str) -> Value {
    let path = format!(
        "{}/../github/tests/data/webhook-examples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    if repository != "as published" {
        let (owner, name) = repository.split_once('/').unwrap();
        v["repository"]["full_name"] = repository.into();
        v["repository"]["name"] = name.into();
        v["repository"]["owner"]["login"] = owner.into();
        // The head lives in the repository itself, not a fork.
        for side in ["head", "base"] {
            if v["pull_request"][side]["repo"].is_object() {
                v["pull_request"][side]["repo"]["full_name"] = repository.into();
            }
        }
    }
    v
}

fn ready(p: &Value) -> bool {
    p["phase"] == "Ready" && p["observed_generation"] == p["generation"]
}

/// Registers the task IP in the target group named `name` once it exists.
async fn register_target(moto: &Moto, name: impl Fn(&str) -> bool, log: impl Fn() -> String) {
    for _ in 0..240 {
        let snap = moto.world(&["snapshot"]);
        let tg = snap["target_groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| name(t["name"].as_str().unwrap()))
            .cloned();
        if let Some(tg) = tg {
            moto.world(&["register-target", tg["arn"].as_str().unwrap()]);
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the target group was never created:\n{}", log());
}

/// The request lines (`METHOD /path`) the fake GitHub has seen.
fn request_lines(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|r| r.lines().next().unwrap_or("").to_owned())
        .collect()
}

/// The body of every request to `path_start`.
fn bodies(seen: &Arc<Mutex<Vec<String>>>, method_path: &str) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with(method_path))
        .filter_map(|r| r.split_once("\r\n\r\n"))
        .filter_map(|(_, b)| serde_json::from_str(b.trim()).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_projects_share_one_previewd_without_sharing_a_name_or_a_repository() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let (fake, github) = fake_github();
    let api_url = format!("http://{fake}");
    let env = [
        ("PREVIEWD_GITHUB_TOKEN", "ghp_moto_two_projects"),
        ("PREVIEWD_GITHUB_API_URL", api_url.as_str()),
        ("PREVIEWD_GITHUB_WEBHOOK_SECRET", SECRET),
    ];
    let daemon = Daemon::start_edited(&moto, &world, ("testing", "testing"), &env, two_projects);
    previewd_github::install_ring_provider();
    let c = Client {
        base: daemon.base.clone(),
        http: reqwest::Client::new(),
    };

    // With two projects a dispatch must say which; the refusal names the
    // field, the rule and the projects.
    let (status, refusal) = c
        .dispatch(&json!({"action": "deploy", "branch": BRANCH, "commit_sha": SHA1}))
        .await;
    assert_eq!(status, 422, "{refusal}");
    assert_eq!(refusal["field"], "project", "{refusal}");
    let rule = refusal["error"].as_str().unwrap();
    assert!(rule.contains("more than one project"), "{rule}");
    assert!(rule.contains(WEB) && rule.contains(API), "{rule}");
    let (status, refusal) = c
        .dispatch(&json!({"action": "deploy", "branch": BRANCH, "commit_sha": SHA1, "project": "acme/shop"}))
        .await;
    assert_eq!(
        (status, &refusal["field"]),
        (422, &json!("project")),
        "{refusal}"
    );

    // The same branch in both projects, one after the other.
    let (status, web) = c
        .dispatch(
            &json!({"action": "deploy", "branch": BRANCH, "commit_sha": SHA1, "project": WEB}),
        )
        .await;
    assert_eq!(status, 202, "{web}");
    assert_eq!(web["project"], WEB);
    let (status, api) = c
        .dispatch(
            &json!({"action": "deploy", "branch": BRANCH, "commit_sha": SHA2, "project": API}),
        )
        .await;
    assert_eq!(status, 202, "{api}");
    assert_eq!(api["project"], API);
    assert!(
        api["status_url"]
            .as_str()
            .unwrap()
            .ends_with("?project=acme%2Fapi"),
        "{api}"
    );

    register_target(&moto, |n| n == "pv-qanote-issue-42", || daemon.log_text()).await;
    register_target(&moto, |n| n.starts_with("api-"), || daemon.log_text()).await;
    let web = c.wait(WEB, "Ready", ready).await;
    let api = c.wait(API, "Ready", ready).await;

    // No name is shared: the first keeps the readable names, the second's
    // slug and host label are its own (unique over every project), and
    // each project's prefix starts its resources.
    assert_eq!(
        web["url"], "https://issue-42-preview.preview.example.com",
        "{web:#}"
    );
    assert_ne!(web["slug"], api["slug"]);
    assert_ne!(web["host"], api["host"]);
    assert_ne!(web["url"], api["url"]);
    let api_slug = api["slug"].as_str().unwrap();
    let api_family = format!("api-{api_slug}");
    let snap = moto.world(&["snapshot"]);
    for family in ["pv-qanote-issue-42", api_family.as_str()] {
        let service = find(&snap["services"], "name", family).expect(family);
        assert!(ours(service), "{service:#}");
        assert!(snap["task_definitions"].get(family).is_some(), "{family}");
        let group = format!("/ecs/{family}");
        assert!(
            find(&snap["log_groups"], "name", &group).is_some(),
            "{group}"
        );
    }
    // Each project's template: its own image.
    let image = |family: &str| {
        snap["task_definitions"][family]["containerDefinitions"][0]["image"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        image("pv-qanote-issue-42").as_deref(),
        Some(format!("registry.example.com/shop:{SHA1}").as_str())
    );
    assert_eq!(
        image(&api_family).as_deref(),
        Some(format!("registry.example.com/api:{SHA2}").as_str())
    );
    // Each project's TTL: 24 h and 48 h from the deploy.
    let hours_left = |p: &Value| {
        let at = chrono::DateTime::parse_from_rfc3339(p["expires_at"].as_str().unwrap()).unwrap();
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0
    };
    assert!((23.0..=24.0).contains(&hours_left(&web)), "{web:#}");
    assert!((47.0..=48.0).contains(&hours_left(&api)), "{api:#}");

    // Each project's statuses go to its own repository.
    for (repo, sha) in [(WEB, SHA1), (API, SHA2)] {
        let created = bodies(&github, &format!("POST /repos/{repo}/deployments "));
        assert!(
            created.iter().any(|d| d["ref"] == sha),
            "{repo}: no deployment of {sha}: {:?}",
            request_lines(&github)
        );
        let statuses = bodies(
            &github,
            &format!("POST /repos/{repo}/deployments/1/statuses"),
        );
        assert!(
            statuses.iter().any(|s| s["state"] == "success"),
            "{repo}: no success status: {:?}",
            request_lines(&github)
        );
    }
    let lines = request_lines(&github);
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("/repos/") || l.contains(WEB) || l.contains(API)),
        "{lines:?}"
    );

    // The status page and /metrics name the project of each preview.
    let page = c.text("/").await;
    assert!(page.contains(WEB) && page.contains(API), "{page}");
    let metrics = c.text("/metrics").await;
    for project in [WEB, API] {
        let line = format!("project=\"{project}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("previewd_project_previews")
                    && l.contains(&line)
                    && l.contains("phase=\"Ready\"")
                    && l.ends_with(" 1")),
            "{metrics}"
        );
    }

    // A delivery for a repository no project serves changes nothing.
    let (status, answer) = c
        .webhook(
            "pull_request",
            "d-other",
            &example("pull_request.closed", "as published"),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let why = answer["ignored"].as_str().unwrap();
    assert!(
        why.contains("Codertocat/Hello-World") && why.contains("not a project"),
        "{why}"
    );

    // Each repository's delivery reaches its own project's preview only.
    let mut closed = example("pull_request.closed", WEB);
    let later = (chrono::Utc::now() + chrono::Duration::seconds(5))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    closed["pull_request"]["head"]["ref"] = BRANCH.into();
    closed["pull_request"]["closed_at"] = later.into();
    let (status, answer) = c.webhook("pull_request", "d-web", &closed).await;
    assert_eq!((status, &answer["found"]), (202, &json!(true)), "{answer}");
    c.wait(WEB, "Deleted", |p| p["phase"] == "Deleted").await;
    assert!(
        ready(&c.preview(API, BRANCH).await),
        "the other project's preview was touched"
    );

    let mut deleted = example("delete", API);
    deleted["ref"] = BRANCH.into();
    deleted["ref_type"] = "branch".into();
    let (status, answer) = c.webhook("delete", "d-api", &deleted).await;
    assert_eq!((status, &answer["found"]), (202, &json!(true)), "{answer}");
    c.wait(API, "Deleted", |p| p["phase"] == "Deleted").await;

    // Nothing of either project is left.
    let snap = moto.world(&["snapshot"]);
    for key in ["rules", "target_groups", "log_groups"] {
        let left: Vec<&Value> = snap[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| ours(r))
            .collect();
        assert!(left.is_empty(), "{key} left behind: {left:#?}");
    }
    let live: Vec<&Value> = snap["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| ours(s) && s["status"] == "ACTIVE")
        .collect();
    assert!(live.is_empty(), "services left: {live:#?}");
    for family in ["pv-qanote-issue-42", api_family.as_str()] {
        assert!(
            snap["task_definitions"].get(family).is_none(),
            "{family} left ACTIVE"
        );
    }
    // Both repositories heard their preview is gone.
    for repo in [WEB, API] {
        let statuses = bodies(
            &github,
            &format!("POST /repos/{repo}/deployments/1/statuses"),
        );
        assert!(
            statuses.iter().any(|s| s["state"] == "inactive"),
            "{repo}: no inactive status: {:?}",
            request_lines(&github)
        );
    }
}
