//! The AWS SDK implementations of previewd's cloud ports: ECS (task
//! definitions, services), ELBv2 (the shared listener's rules, target
//! groups), Route53 (the preview zone), CloudWatch Logs, ECR (whether a
//! preview's image exists) and CloudWatch metrics (request counts, sleep).
//!
//! Credentials and region come from the standard AWS chain (environment,
//! profile, ECS task role, web identity); `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` are honoured, so the same binary talks to
//! AWS or to a local emulator such as moto. TLS is rustls with ring.
//!
//! Observation is batched: one paged `DescribeRules` per listener, tags in
//! batches of 20, `DescribeServices` ten at a time, `ListResourceRecordSets`
//! paged. Every call is counted by operation and outcome ([`calls::run`]),
//! after waiting for the client-side pacer when one is set ([`Aws::with_pacer`]).
#![forbid(unsafe_code)]

pub mod calls;
mod dns;
pub mod doctor;
mod doctor_iam;
mod doctor_sleep;
mod ecr;
mod ecs;
mod elb;
mod elb_auth;
pub mod error;
mod logs;
mod metrics;
pub mod policy;

pub use calls::{OPERATIONS, Purpose, Spec};
pub use error::Op;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use previewd_core::limits::{MAX_PACED_WAIT, Pacer, paced_out};
use std::sync::Arc;
use std::time::Duration;

/// Where previewd's resources live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `None`: the region of the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// The ECS cluster previews run in (name or ARN).
    pub cluster: String,
    /// The pool's first listener (the single-listener configuration's).
    pub listener_arn: String,
    /// Every listener of the pool, the first included: what the doctor
    /// checks. Rules go on the listener their `RuleSpec` names.
    pub listener_arns: Vec<String>,
    /// The Route53 zone preview records go in.
    pub hosted_zone_id: String,
    /// A bound on each call, retries included.
    pub call_timeout: Duration,
}

/// The cloud ports over one set of SDK clients.
pub struct Aws {
    settings: Settings,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    route53: aws_sdk_route53::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    /// Used by `previewd doctor` only.
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
    ec2: aws_sdk_ec2::Client,
    /// The image check (DescribeImages), and the doctor's look at the
    /// repository's lifecycle.
    ecr: aws_sdk_ecr::Client,
    /// Each listener's load balancer, looked up once.
    load_balancer_arns: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The idle check's request counts (sleep).
    cloudwatch: aws_sdk_cloudwatch::Client,
    /// previewd's share of the account's API buckets; every request waits
    /// for its tokens here, page by page.
    pacer: Option<Arc<Pacer>>,
}

impl Aws {
    /// Loads credentials and region from the standard chain and builds the
    /// clients. Nothing is called until a port method is.
    pub async fn connect(settings: Settings) -> Aws {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(settings.call_timeout / 2)
                    .operation_timeout(settings.call_timeout)
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        Aws {
            ecs: aws_sdk_ecs::Client::new(&shared),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&shared),
            route53: aws_sdk_route53::Client::new(&shared),
            logs: aws_sdk_cloudwatchlogs::Client::new(&shared),
            sts: aws_sdk_sts::Client::new(&shared),
            iam: aws_sdk_iam::Client::new(&shared),
            ec2: aws_sdk_ec2::Client::new(&shared),
            ecr: aws_sdk_ecr::Client::new(&shared),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&shared),
            settings,
            load_balancer_arns: std::sync::Mutex::default(),
            pacer: None,
        }
    }

    /// Every request from now on waits for its tokens in `pacer`.
    pub fn with_pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// One request: paced, then sent and counted by [`calls::run`]. A
    /// request that would wait past [`MAX_PACED_WAIT`] is not sent: its
    /// call fails as throttled and the pass is retried, every page of a
    /// listing alike.
    async fn run<T, E>(
        &self,
        op: Op,
        call: impl std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, previewd_core::CloudError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(pacer) = &self.pacer {
            let now = tokio::time::Instant::now().into_std();
            let go = pacer
                .try_reserve(&op, now, Some(MAX_PACED_WAIT))
                .map_err(|wait| paced_out(&op.action(), wait))?;
            tokio::time::sleep_until(tokio::time::Instant::from_std(go)).await;
        }
        calls::run(op, call).await
    }
}

/// AWS returns tags as key/value pairs in each service's own type; ours
/// are a map.
fn tag_map<I, K, V>(pairs: I) -> previewd_core::tags::Tags
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}
