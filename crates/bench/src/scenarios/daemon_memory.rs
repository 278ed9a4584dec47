//! daemon-memory: the resident memory of the `previewd serve` process
//! alone, holding N previews through a full resync, with the cloud outside
//! it: moto (a real AWS emulator, its own process) serves every AWS call
//! through the AWS SDK, and this process only dispatches over HTTP and
//! reads `/proc/<pid>/status`. Moto launches no tasks, so a helper script
//! registers a target in each new target group, as a started task would.

use super::burst::Outcome;
use super::{round3, secs};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

pub struct Params {
    pub n: usize,
    pub albs: usize,
    pub resync: Duration,
    /// The `previewd` binary to measure.
    pub previewd: PathBuf,
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn venv() -> PathBuf {
    std::env::var_os("PREVIEWD_MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/previewd-venv"))
}

const FLEET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/moto/fleet.py");

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_for_port(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {addr} after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `VmHWM` (peak) and `VmRSS` (now) of process `pid`, in KiB.
fn rss_of(pid: u32) -> (u64, u64) {
    super::memory::rss_kib_of(&pid.to_string())
}

fn mib(kib: u64) -> f64 {
    round3(kib as f64 / 1024.0)
}

/// previewd's configuration for the account `world` (fleet.py setup).
fn config(dir: &Path, world: &Value, resync: Duration) -> anyhow::Result<PathBuf> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let listeners = world["listeners"].as_array().context("listeners")?;
    let cloud = listeners_toml(listeners);
    let text = format!(
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
hosted_zone_id = "{zone}"
dns_mode = "alias"
vpc_id = "{vpc}"
subnets = {subnets}
security_groups = ["{sg}"]
api_share_percent = 100
{cloud}
[naming]
domain = "{domain}"
[container]
image = "registry.example.com/shop:{{commit_sha}}"
log_retention_days = 7
[controller]
resync_interval_secs = {resync}
progress_interval_ms = 2000
"#,
        db = dir.join("previewd.db").display(),
        zone = s(&world["hosted_zone_id"]),
        vpc = s(&world["vpc_id"]),
        subnets = world["subnets"],
        sg = s(&world["security_group"]),
        domain = s(&world["domain"]),
        resync = resync.as_secs().max(1),
    );
    let path = dir.join("previewd.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The `[cloud]` keys naming the listeners: the single-listener keys for
/// one, a `cloud.listeners` pool for several.
fn listeners_toml(listeners: &[Value]) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if let [l] = listeners {
        return format!(
            "listener_arn = \"{}\"\nalb_dns_name = \"{}\"\nalb_zone_id = \"{}\"\n",
            s(&l["listener_arn"]),
            s(&l["alb_dns_name"]),
            s(&l["alb_zone_id"]),
        );
    }
    listeners
        .iter()
        .map(|l| {
            format!(
                "[[cloud.listeners]]\narn = \"{}\"\nalb_dns_name = \"{}\"\nalb_zone_id = \"{}\"\n",
                s(&l["listener_arn"]),
                s(&l["alb_dns_name"]),
                s(&l["alb_zone_id"]),
            )
        })
        .collect()
}

/// The count of previews in `phase`, read off `/metrics`.
async fn phase_count(http: &reqwest::Client, base: &str, phase: &str) -> anyhow::Result<u64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let needle = format!("phase=\"{phase}\"}}");
    Ok(text
        .lines()
        .filter(|l| l.starts_with("previewd_previews{") && l.contains(&needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum())
}

pub async fn daemon_memory(p: &Params) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        p.previewd.exists(),
        "no previewd binary at {} (build it with `cargo build --release -p previewd`)",
        p.previewd.display()
    );
    previewd_github::install_ring_provider();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let moto_server = venv().join("bin/moto_server");
    anyhow::ensure!(
        moto_server.exists(),
        "moto is missing: {} (./scripts/test installs it)",
        moto_server.display()
    );
    let moto = Process(
        Command::new(moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ECS_SERVICE_RUNNING", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("moto_server starts")?,
    );
    wait_for_port(([127, 0, 0, 1], port).into()).await?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let python = venv().join("bin/python");
    let out = Command::new(&python)
        .args([FLEET, &endpoint, "setup", &p.albs.to_string()])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "fleet.py setup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let world: Value = serde_json::from_slice(&out.stdout)?;
    let _registrar = Process(
        Command::new(&python)
            .args([FLEET, &endpoint, "register"])
            .stdout(Stdio::null())
            .spawn()?,
    );

    let path = config(dir.path(), &world, p.resync)?;
    let log = dir.path().join("previewd.log");
    let daemon = Process(
        Command::new(&p.previewd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("no-creds"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PREVIEWD_LOG", "warn,previewd=info")
            .args(["--log-format", "json", "--config"])
            .arg(&path)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("previewd serve starts")?,
    );
    let pid = daemon.0.id();
    let base = listening_on(&log).await?;
    let http = reqwest::Client::new();
    let (_, idle_rss) = rss_of(pid);

    let started = Instant::now();
    for i in 0..p.n {
        let body =
            json!({"action": "deploy", "branch": format!("bench-{i}"), "commit_sha": "c0ffee1"});
        let resp = http
            .post(format!("{base}/v1/dispatch"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "dispatch {i}: {}",
            resp.status()
        );
    }
    loop {
        let ready = phase_count(&http, &base, "Ready").await?;
        if ready as usize >= p.n {
            break;
        }
        if started.elapsed() > super::GIVE_UP {
            bail!("only {ready} of {} Ready after {:?}", p.n, super::GIVE_UP);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let converge = started.elapsed();
    let (hwm_converged, rss_converged) = rss_of(pid);
    // A full resync round, and half another: every row is looked at again.
    tokio::time::sleep(p.resync + p.resync / 2).await;
    let (hwm, rss) = rss_of(pid);
    let ready = phase_count(&http, &base, "Ready").await?;
    drop(daemon);
    drop(moto);

    let summary = format!(
        "daemon-memory n={} albs={}: previewd serve peak RSS {} MiB ({} MiB idle before the \
         previews, {} MiB after converging, {} MiB after a full resync); {ready} Ready in {:.0} s",
        p.n,
        p.albs,
        mib(hwm),
        mib(idle_rss),
        mib(rss_converged),
        mib(rss),
        converge.as_secs_f64(),
    );
    let json = json!({
        "scenario": "daemon-memory",
        "system": "previewd serve (separate process) against moto",
        "n": p.n,
        "albs": p.albs,
        "resync_interval_secs": secs(p.resync),
        "rss_idle_mib": mib(idle_rss),
        "peak_rss_after_converging_mib": mib(hwm_converged),
        "rss_after_converging_mib": mib(rss_converged),
        "peak_rss_mib": mib(hwm),
        "rss_after_resync_mib": mib(rss),
        "converge_secs": secs(converge),
        "ready": ready,
    });
    Ok(Outcome { json, summary })
}

/// The API address the daemon logged.
async fn listening_on(log: &Path) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let addr = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["message"] == "previewd listening")
            .and_then(|l| l["fields"]["addr"].as_str().map(str::to_owned));
        if let Some(addr) = addr {
            return Ok(format!("http://{addr}"));
        }
        if Instant::now() > deadline {
            bail!("previewd did not start:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
