//! The previewd binary: parses the command line and runs the command.
#![forbid(unsafe_code)]

mod app;
mod client;
mod config;
mod once;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Preview environments for pull-request branches on AWS ECS/Fargate.
#[derive(Debug, Parser)]
#[command(name = "previewd", version)]
struct Cli {
    /// Configuration file (TOML); every key can also be set with
    /// PREVIEWD_<SECTION>_<KEY>.
    #[arg(long, global = true, env = "PREVIEWD_CONFIG")]
    config: Option<PathBuf>,
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "PREVIEWD_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: the HTTP API and the reconcile loop.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Run one garbage-collection sweep: expire previews past their TTL and
    /// delete resources of ours that no preview wants.
    Gc {
        /// Print what would be deleted and why; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Deploy or destroy one preview now, without a daemon or database.
    ///
    /// Prints the preview URL and exits 0 when it is Ready (or gone), 1
    /// with the failure description otherwise, 2 on bad input.
    Once(once::OnceArgs),
    /// Check this configuration against the live AWS account.
    ///
    /// Prints a table of checks with their fixes; exits 1 when anything
    /// would break a deploy.
    Doctor,
    /// Print the least-privilege IAM policy for this configuration.
    ///
    /// JSON, generated from the table of AWS operations previewd calls.
    IamPolicy,
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check the configuration and report every problem with its key.
    Check,
}

fn init_logs(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PREVIEWD_LOG")
        .unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `once` shows its own progress; its logs are for problems only.
    let default_level = match cli.command {
        Command::Once(_) => "warn",
        _ => "info",
    };
    init_logs(cli.log_format, default_level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        // A client of a daemon needs none of the daemon's configuration.
        Command::Client(c) => runtime.block_on(client::run(c)).map(|()| ExitCode::SUCCESS),
        daemon => {
            let cfg = match config::load(cli.config.as_deref(), std::env::vars()) {
                Ok(cfg) => cfg,
                Err(problems) => {
                    eprintln!("configuration has {} problem(s):", problems.len());
                    for p in &problems {
                        eprintln!("  {p}");
                    }
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run(daemon, cfg))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The commands that act on the configured store and cloud.
async fn run(command: Command, cfg: config::Config) -> anyhow::Result<ExitCode> {
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match command {
        Command::Serve => done(app::serve(cfg).await),
        Command::Migrate => done(app::migrate(&cfg).await),
        Command::Gc { dry_run } => done(app::gc(&cfg, dry_run).await),
        Command::Once(args) => Ok(match once::once(cfg, args).await? {
            once::Outcome::Done => ExitCode::SUCCESS,
            once::Outcome::Failed(why) => {
                eprintln!("preview failed: {why}");
                ExitCode::FAILURE
            }
            once::Outcome::Refused(why) => {
                eprintln!("refused: {why}");
                ExitCode::from(2)
            }
        }),
        Command::Doctor => Ok(if app::doctor(&cfg).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::IamPolicy => {
            let policy = previewd_aws::policy::policy(&cfg.policy_scope())?;
            println!("{}", serde_json::to_string_pretty(&policy)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check) => {
            println!(
                "configuration OK (store {}, cloud {:?}, listen {})",
                redact_url(&cfg.store.url),
                cfg.cloud.kind,
                cfg.server.listen
            );
            // Who authenticates and where the secret comes from, never it.
            for p in cfg.project_list() {
                if let Some(access) = p.access.access() {
                    let secret = p
                        .access
                        .secret_source()
                        .map(|s| format!(", client secret from {s}"))
                        .unwrap_or_default();
                    println!(
                        "access protection: {}: {}{secret}",
                        p.project,
                        access.auth.summary()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Client(c) => done(client::run(c).await),
    }
}

/// A URL with its password and every password-like query parameter
/// (`password`, `sslpassword`, `token`, `secret`, `…key`) replaced, for
/// printing.
pub fn redact_url(url: &str) -> String {
    const SENSITIVE: [&str; 4] = ["pass", "secret", "token", "key"];
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        // Not a URL a parser reads: print nothing after the scheme's host.
        return match url.find("://") {
            Some(s) => format!("{}://***", &url[..s]),
            None => "***".into(),
        };
    };
    let mut changed = false;
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
        changed = true;
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            if SENSITIVE.iter().any(|s| lower.contains(s)) {
                changed = true;
                (k.into_owned(), "***".to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    if !changed {
        return url.to_owned();
    }
    if !pairs.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_and_password_like_parameters_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/previews?sslmode=require"),
            "postgres://app:***@db:5432/previews?sslmode=require"
        );
        let r =
            redact_url("postgres://db/previews?user=app&password=hunter2&sslpassword=x2&sslkey=/k");
        assert!(!r.contains("hunter2") && !r.contains("x2"), "{r}");
        assert!(r.contains("user=app"), "{r}");
        assert_eq!(redact_url("sqlite://previewd.db"), "sqlite://previewd.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert!(!redact_url("post gres://u:hunter2@x").contains("hunter2"));
    }
}
