//! `previewd-bench`: runs one scenario, prints its JSON line on stdout and
//! a one-line summary on stderr. BENCHMARKS.md says how each was run.

use anyhow::Context;
use clap::{Parser, Subcommand};
use previewd_bench::harness::{Backend, DEFAULT_PG_URL, SimParams};
use previewd_bench::scenarios::{self, System, burst::Outcome};
use previewd_bench::svg;
use std::io::Write;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "previewd benchmarks on the simulated AWS")]
struct Cli {
    /// Simulated latency of every AWS request.
    #[arg(long, default_value_t = 30, global = true)]
    latency_ms: u64,
    /// Load balancers in the sim, each at AWS's true limits (100 target
    /// groups, 100 rules) with one listener in previewd's pool. Default:
    /// as many as the run's previews need.
    #[arg(long, global = true)]
    albs: Option<usize>,
    /// Other teams' rules and target groups on each listener.
    #[arg(long, default_value_t = 0, global = true)]
    foreign: usize,
    /// previewd's reconciles at once (`controller.workers`); its default
    /// when not given.
    #[arg(long, global = true)]
    workers: Option<usize>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N previews dispatched at once; time until all are Ready vs the bound.
    Burst {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, value_enum, default_value_t = System::Previewd)]
        system: System,
    },
    /// N Ready previews through K resync rounds with nothing to change.
    Steady {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long, default_value_t = 20)]
        resync_secs: u64,
        #[arg(long, value_enum, default_value_t = System::Previewd)]
        system: System,
    },
    /// N Ready previews each get a new commit.
    Redeploy {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, value_enum, default_value_t = System::Previewd)]
        system: System,
    },
    /// Dispatch to first mutating AWS call, idle and busy.
    Reaction {
        #[arg(long, default_value_t = 20)]
        probes: usize,
        #[arg(long, default_value_t = 100)]
        busy_n: usize,
    },
    /// Throughput and latency of POST /v1/dispatch.
    Dispatch {
        #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
        backend: Backend,
        #[arg(long, default_value = DEFAULT_PG_URL)]
        pg_url: String,
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Store writes during a burst on PostgreSQL, and how many are lease
    /// renewals.
    Lease {
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// The controller's lease (`controller.lease_secs`).
        #[arg(long, default_value_t = 15)]
        lease_secs: u64,
        #[arg(long, default_value = DEFAULT_PG_URL)]
        pg_url: String,
    },
    /// Peak RSS holding N previews through a full resync.
    Memory {
        #[arg(long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 20)]
        resync_secs: u64,
        /// Enforce AWS's rate limits while converging (slow for N=1000).
        #[arg(long)]
        throttling: bool,
    },
    /// Peak RSS of the `previewd serve` process alone holding N previews
    /// through a full resync, against moto in its own process.
    DaemonMemory {
        #[arg(long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 20)]
        resync_secs: u64,
        /// The binary to measure; by default `previewd` beside this one.
        #[arg(long)]
        previewd: Option<std::path::PathBuf>,
    },
    /// Sleep on a usage trace: N previews over H simulated hours, each
    /// visited in S sessions at random times, time compressed (tokio's
    /// paused clock): task-hours, wake latency, idle-check API cost.
    Trace {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 72)]
        hours: u64,
        #[arg(long, default_value_t = 3)]
        sessions: usize,
        #[arg(long, default_value_t = 20)]
        session_minutes: u64,
        #[arg(long, default_value_t = 18)]
        seed: u64,
        /// `sleep.idle_after_secs`.
        #[arg(long, default_value_t = 3600)]
        idle_after_secs: u64,
        /// `sleep.check_interval_secs`.
        #[arg(long, default_value_t = 300)]
        check_interval_secs: u64,
        /// `sleep.retry_after_secs`.
        #[arg(long, default_value_t = 5)]
        retry_after_secs: u64,
        /// The idle check as before its schedule: a read at every check
        /// with a preview awake for idle_after (for comparison).
        #[arg(long)]
        read_every_check: bool,
    },
    /// Draws the burst chart from JSON lines of `burst` runs.
    Chart {
        /// A file of JSON lines (the output of the burst runs).
        #[arg(long)]
        input: std::path::PathBuf,
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long)]
        output: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Quiet unless RUST_LOG asks (e.g. previewd_sim=debug shows throttling).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut params = SimParams::aws_like(cli.latency_ms);
    if let Some(w) = cli.workers {
        params.workers = w;
    }
    // How many previews the run holds at once, for the default pool size.
    let held = match &cli.scenario {
        Scenario::Burst { n, .. }
        | Scenario::Steady { n, .. }
        | Scenario::Redeploy { n, .. }
        | Scenario::Lease { n, .. }
        | Scenario::Memory { n, .. }
        | Scenario::DaemonMemory { n, .. } => *n,
        Scenario::Reaction { probes, busy_n } => probes + busy_n,
        Scenario::Trace { n, .. } => *n,
        Scenario::Dispatch { .. } | Scenario::Chart { .. } => 1,
    };
    params.foreign = cli.foreign;
    params.albs = cli
        .albs
        .unwrap_or_else(|| SimParams::albs_for(held, cli.foreign));
    let out: Outcome = match cli.scenario {
        Scenario::Burst { n, system } => scenarios::burst::burst(system, n, &params).await?,
        Scenario::Steady {
            n,
            rounds,
            resync_secs,
            system,
        } => {
            let resync = Duration::from_secs(resync_secs);
            scenarios::steady::steady(system, n, rounds, resync, &params).await?
        }
        Scenario::Redeploy { n, system } => scenarios::burst::redeploy(system, n, &params).await?,
        Scenario::Reaction { probes, busy_n } => {
            scenarios::reaction::reaction(probes, busy_n, &params).await?
        }
        Scenario::Dispatch {
            backend,
            pg_url,
            requests,
            concurrency,
        } => scenarios::api::dispatch(backend, &pg_url, requests, concurrency).await?,
        Scenario::Lease {
            n,
            lease_secs,
            pg_url,
        } => {
            let lease = Duration::from_secs(lease_secs);
            scenarios::lease::lease(n, lease, &pg_url, &params).await?
        }
        Scenario::Memory {
            n,
            resync_secs,
            throttling,
        } => {
            params.throttling = throttling;
            let resync = Duration::from_secs(resync_secs);
            scenarios::memory::memory(n, resync, &params).await?
        }
        Scenario::DaemonMemory {
            n,
            resync_secs,
            previewd,
        } => {
            let previewd = match previewd {
                Some(p) => p,
                None => std::env::current_exe()?.with_file_name("previewd"),
            };
            let p = scenarios::daemon_memory::Params {
                n,
                albs: params.albs,
                resync: Duration::from_secs(resync_secs),
                previewd,
            };
            scenarios::daemon_memory::daemon_memory(&p).await?
        }
        Scenario::Trace {
            n,
            hours,
            sessions,
            session_minutes,
            seed,
            idle_after_secs,
            check_interval_secs,
            retry_after_secs,
            read_every_check,
        } => {
            let p = scenarios::trace::TraceParams {
                n,
                hours,
                sessions,
                session_minutes,
                seed,
                idle_after_secs,
                check_interval_secs,
                retry_after_secs,
                read_every_check,
            };
            // Its own runtime, paused: off this one's threads.
            tokio::task::spawn_blocking(move || scenarios::trace::trace(p, params)).await??
        }
        Scenario::Chart { input, n, output } => return chart(&input, n, &output),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", out.json)?;
    eprintln!("{}", out.summary);
    Ok(())
}

/// The latest burst line of each system for `n`, drawn on one chart.
fn chart(input: &std::path::Path, n: usize, output: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(input).with_context(|| input.display().to_string())?;
    let mut latest = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["scenario"] == "burst" && v["n"] == n {
            latest.insert(v["system"].as_str().unwrap_or("?").to_string(), v);
        }
    }
    anyhow::ensure!(
        !latest.is_empty(),
        "no burst runs with n={n} in {}",
        input.display()
    );
    let colors = [("previewd", "#1f77b4"), ("baseline", "#d62728")];
    let mut series = Vec::new();
    let mut bound = None;
    for (system, color) in colors {
        let Some(v) = latest.get(system) else {
            continue;
        };
        let ready: Vec<f64> = v["ready_secs_sorted"]
            .as_array()
            .context("ready_secs_sorted")?
            .iter()
            .filter_map(|x| x.as_f64())
            .collect();
        series.push(svg::Series {
            label: format!(
                "{system}: all Ready in {:.0} s ({:.2}× bound)",
                v["all_ready_secs"].as_f64().unwrap_or(0.0),
                v["ratio_to_bound"].as_f64().unwrap_or(0.0)
            ),
            color,
            ready_secs: ready,
        });
        bound = v["lower_bound_secs"].as_f64();
    }
    let markers: Vec<svg::Marker> = bound
        .map(|b| svg::Marker {
            label: format!("rate-limit lower bound {b:.0} s"),
            at_secs: b,
        })
        .into_iter()
        .collect();
    let title = format!("Burst of {n} previews on the simulated AWS (AWS rate limits)");
    std::fs::write(output, svg::ready_chart(&title, &series, &markers))?;
    eprintln!("wrote {}", output.display());
    Ok(())
}
