//! A moto server on a free loopback port, the account fixtures of
//! `world.py`, and the real `previewd serve` pointed at them through the
//! standard `AWS_ENDPOINT_URL`.

use serde_json::{Value, json};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/test` installs moto; override with PREVIEWD_MOTO_VENV.
fn venv() -> PathBuf {
    std::env::var_os("PREVIEWD_MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/previewd-venv"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Moto {
    child: Child,
    pub endpoint: String,
    _log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts `moto_server`; fails (never skips) when moto is missing.
    pub fn start() -> Moto {
        let server = venv().join("bin/moto_server");
        assert!(
            server.exists(),
            "moto is not installed: {} is missing. Run ./scripts/test (it installs moto[server] into that virtualenv) or point PREVIEWD_MOTO_VENV at a virtualenv that has it.",
            server.display()
        );
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // moto launches no tasks; this makes services report them running.
            .env("MOTO_ECS_SERVICE_RUNNING", "1")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("moto_server starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_for_port(addr, "moto_server");
        Moto {
            child,
            endpoint: format!("http://{addr}"),
            _log: log,
        }
    }

    /// Runs a `world.py` command and returns its JSON.
    pub fn world(&self, args: &[&str]) -> Value {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/moto/world.py");
        let out = Command::new(venv().join("bin/python"))
            .arg(script)
            .arg(&self.endpoint)
            .args(args)
            .output()
            .expect("the virtualenv's python runs");
        assert!(
            out.status.success(),
            "world.py {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("world.py prints JSON")
    }

    /// From now on every call must be signed by an IAM user whose policies
    /// allow it (moto's IAM enforcement; actions only).
    pub fn enforce_iam(&self) {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0"
        )
        .unwrap();
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut s, &mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration of a previewd on `world`, written into `dir`.
pub fn write_config(dir: &tempfile::TempDir, world: &Value) -> PathBuf {
    let s = |k: &str| world[k].as_str().unwrap().to_owned();
    let single = format!(
        "listener_arn = \"{}\"\nalb_dns_name = \"{}\"\nalb_zone_id = \"{}\"\n",
        s("listener_arn"),
        s("alb_dns_name"),
        s("alb_zone_id")
    );
    write_config_with(dir, world, &single, "")
}

/// The configuration of a previewd placing previews on a pool: one
/// `[[cloud.listeners]]` per entry of `listeners` (each with
/// `listener_arn`, `alb_dns_name`, `alb_zone_id` and `rule_quota`).
pub fn write_pool_config(dir: &tempfile::TempDir, world: &Value, listeners: &[Value]) -> PathBuf {
    let mut pool = String::new();
    for l in listeners {
        pool.push_str(&format!(
            "[[cloud.listeners]]\narn = {}\nalb_dns_name = {}\nalb_zone_id = {}\nrule_quota = {}\n",
            l["listener_arn"], l["alb_dns_name"], l["alb_zone_id"], l["rule_quota"]
        ));
    }
    write_config_with(dir, world, "", &pool)
}

/// `listener` goes into `[cloud]`; `pool` follows it.
fn write_config_with(
    dir: &tempfile::TempDir,
    world: &Value,
    listener: &str,
    pool: &str,
) -> PathBuf {
    let s = |k: &str| world[k].as_str().unwrap().to_owned();
    let list = |k: &str| serde_json::to_string(&world[k]).unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[store]
url = "sqlite://{db}"
[previews]
project = "acme/shop"
[cloud]
kind = "aws"
region = "us-east-1"
cluster = "previews"
{listener}hosted_zone_id = "{zone}"
dns_mode = "alias"
vpc_id = "{vpc}"
subnets = {subnets}
security_groups = ["{sg}"]
call_timeout_secs = 10
{pool}[naming]
domain = "preview.example.com"
[container]
image = "registry.example.com/shop:{{commit_sha}}"
log_retention_days = 7
[controller]
progress_interval_ms = 200
poll_interval_ms = 100
resync_interval_secs = 2
"#,
        db = dir.path().join("p.db").display(),
        zone = s("hosted_zone_id"),
        vpc = s("vpc_id"),
        subnets = list("subnets"),
        sg = s("security_group"),
    );
    // A test's own sections (`[sleep]`), appended as they are.
    let extra = world["extra_toml"].as_str().unwrap_or_default();
    let path = dir.path().join("previewd.toml");
    std::fs::write(&path, config + extra).unwrap();
    path
}

/// The previewd binary with the standard AWS variables of a moto account
/// and nothing from this machine's profile or instance metadata.
pub fn previewd(
    dir: &tempfile::TempDir,
    moto: &Moto,
    keys: (&str, &str),
    env: &[(&str, &str)],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_previewd"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", keys.0)
        .env("AWS_SECRET_ACCESS_KEY", keys.1)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("no-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied());
    cmd
}

/// `previewd serve` with `cloud.kind = "aws"` against moto.
pub struct Daemon {
    child: Child,
    pub base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// `env` adds to (or overrides) the standard AWS variables.
    pub fn start(moto: &Moto, world: &Value, keys: (&str, &str), env: &[(&str, &str)]) -> Daemon {
        Daemon::start_edited(moto, world, keys, env, |c| c)
    }

    /// Like [`Daemon::start`], with the configuration file's text passed
    /// through `edit` first.
    pub fn start_edited(
        moto: &Moto,
        world: &Value,
        keys: (&str, &str),
        env: &[(&str, &str)],
        edit: impl FnOnce(String) -> String,
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(&dir, world);
        let text = edit(std::fs::read_to_string(&path).unwrap());
        std::fs::write(&path, text).unwrap();
        Self::start_in(dir, path, moto, keys, env)
    }

    /// A daemon on a pool of `listeners` (see [`write_pool_config`]).
    pub fn start_pool(moto: &Moto, world: &Value, listeners: &[Value]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = write_pool_config(&dir, world, listeners);
        Self::start_in(dir, path, moto, ("testing", "testing"), &[])
    }

    fn start_in(
        dir: tempfile::TempDir,
        path: PathBuf,
        moto: &Moto,
        keys: (&str, &str),
        env: &[(&str, &str)],
    ) -> Daemon {
        let log = dir.path().join("previewd.log");
        let child = previewd(&dir, moto, keys, env)
            .args(["--log-format", "json", "--config"])
            .arg(&path)
            .arg("serve")
            .env("PREVIEWD_LOG", "info,previewd_controller=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("previewd starts");
        let mut daemon = Daemon {
            child,
            base: String::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(addr) = daemon.log_lines().iter().find_map(|l| {
                (l["fields"]["message"] == "previewd listening")
                    .then(|| l["fields"]["addr"].as_str().map(str::to_owned))
                    .flatten()
            }) {
                daemon.base = format!("http://{addr}");
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("previewd exited with {status}:\n{}", daemon.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "previewd did not start:\n{}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `addr` field of the first log line saying `message`.
    pub fn logged_addr(&self, message: &str) -> Option<String> {
        self.log_lines().iter().find_map(|l| {
            (l["fields"]["message"] == message)
                .then(|| l["fields"]["addr"].as_str().map(str::to_owned))
                .flatten()
        })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's JSON log lines so far.
    pub fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API of a running daemon.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(daemon: &Daemon) -> Api {
        previewd_github::install_ring_provider();
        Api {
            base: daemon.base.clone(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn dispatch(&self, action: &str, branch: &str, sha: Option<&str>) {
        let mut body = json!({"action": action, "branch": branch});
        if let Some(sha) = sha {
            body["commit_sha"] = json!(sha);
        }
        self.dispatch_json(&body).await;
    }

    /// `POST /v1/dispatch` of `body`, the workflow's inputs as JSON.
    pub async fn dispatch_json(&self, body: &Value) {
        let resp = self
            .http
            .post(format!("{}/v1/dispatch", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
    }

    pub async fn preview(&self, branch: &str) -> Value {
        let resp = self
            .http
            .get(format!(
                "{}/v1/previews/{}",
                self.base,
                branch.replace('/', "%2F")
            ))
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }

    /// Polls until `done` holds for the preview; panics with the last view.
    pub async fn wait(&self, branch: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let p = self.preview(branch).await;
            if done(&p) {
                return p;
            }
            assert!(Instant::now() < deadline, "never {what}: {p:#}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The first resource in a snapshot list whose field `key` equals `value`.
pub fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|x| x[key] == value)
}

/// Whether a resource carries previewd's ownership tag.
pub fn ours(resource: &Value) -> bool {
    resource["tags"]["previewd:managed-by"].is_string()
}
