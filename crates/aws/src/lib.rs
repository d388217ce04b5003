//! AWS backends of autoscaling-lifecycle: the runtime's capability traits
//! (`lifecycle_runtime::capability`) implemented with the AWS SDK for Rust.
//!
//! | trait | implementation | AWS |
//! |---|---|---|
//! | `NodeStore`, `CommandStore` | [`DynamoStore`] | DynamoDB: conditional writes, atomic take |
//! | `LifecycleActions` | [`AutoScalingActions`] | Auto Scaling lifecycle hooks, activities, protection |
//! | `CommandRunner` | [`SsmRunner`] | SSM Run Command |
//! | `Snapshots` | `Ec2Snapshots` (feature `ec2`) | EC2 `CreateSnapshot`, `DescribeSnapshots` |
//! | `Secrets` | [`ParameterStore`] | SSM Parameter Store (`SecureString`s decrypted) |
//! | `Reporter` | [`SnsReporter`] | SNS |
//! | `Dns` | [`Route53Dns`] | Route 53 |
//! | `Clock` | [`TokioClock`] | — |
//!
//! [`load_services`] builds all of them from the standard AWS environment (credential chain,
//! `AWS_REGION`, `AWS_ENDPOINT_URL` and the per-service endpoint variables,
//! `AWS_MAX_ATTEMPTS`).
//!
//! Every failure is a [`lifecycle::Fault`] that keeps the AWS error code and HTTP status as
//! data, with its [`lifecycle::FaultKind`] decided in one classification table: throttling,
//! HTTP 429 and 5xx responses, timeouts and dispatch failures are `Transient` (the only kind
//! that is retried); a failed conditional write is `Conflict`; a missing parameter or no
//! active lifecycle action is `NotFound`; everything else — access denied, validation
//! errors — is `Permanent`.

mod autoscaling;
mod clock;
mod dynamo;
#[cfg(feature = "ec2")]
mod ec2;
mod error;
mod route53;
mod sns;
mod ssm;

use std::sync::Arc;
use std::time::Duration;

pub use autoscaling::AutoScalingActions;
pub use clock::TokioClock;
pub use dynamo::{
    ATTR_EXPIRES, COMMAND_TTL, DynamoStore, TYPE_INDEX, from_attribute, to_attribute,
};
#[cfg(feature = "ec2")]
pub use ec2::Ec2Snapshots;
pub use route53::Route53Dns;
pub use sns::SnsReporter;
pub use ssm::{DEFAULT_DELIVERY_TIMEOUT, DEFAULT_EXECUTION_TIMEOUT, ParameterStore, SsmRunner};

use lifecycle_runtime::Services;
use lifecycle_runtime::capability::Snapshots;

/// Time limits for every AWS call, so that no call can hang an invocation (SPEC 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// A whole operation, retries included.
    pub operation: Duration,
    /// One attempt of an operation.
    pub attempt: Duration,
    /// Establishing a connection.
    pub connect: Duration,
    /// How long an SSM command may run on its instances (`executionTimeout`) when its task
    /// sets none.
    pub command: Duration,
    /// How long SSM tries to deliver a command (`TimeoutSeconds`).
    pub command_delivery: Duration,
}

impl Default for Timeouts {
    /// 30 s per operation, 10 s per attempt, 3 s to connect: well inside a Lambda
    /// invocation, and well above what any of the calls made takes when AWS is healthy.
    fn default() -> Self {
        Timeouts {
            operation: Duration::from_secs(30),
            attempt: Duration::from_secs(10),
            connect: Duration::from_secs(3),
            command: ssm::DEFAULT_EXECUTION_TIMEOUT,
            command_delivery: ssm::DEFAULT_DELIVERY_TIMEOUT,
        }
    }
}

/// How the AWS capabilities are set up beyond the SDK's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Timeouts of calls and of commands.
    pub timeouts: Timeouts,
    /// The CloudWatch Logs group every command's output goes to; `None`: SSM keeps only the
    /// first 2,500 characters of each output.
    pub command_log_group: Option<String>,
}

impl Options {
    /// These timeouts, and commands' output sent to `command_log_group` when given.
    pub fn new(timeouts: Timeouts, command_log_group: Option<String>) -> Self {
        Options {
            timeouts,
            command_log_group,
        }
    }
}

impl Timeouts {
    /// The default limits with the operation, attempt and command timeouts given.
    pub fn new(operation: Duration, attempt: Duration, command: Duration) -> Self {
        Timeouts {
            operation,
            attempt,
            command,
            ..Timeouts::default()
        }
    }
}

/// Loads the AWS configuration from the environment (credential chain, region, endpoint
/// variables, `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE`), with `timeouts` on every call.
pub async fn load_config(timeouts: &Timeouts) -> aws_config::SdkConfig {
    let limits = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(timeouts.operation)
        .operation_attempt_timeout(timeouts.attempt)
        .connect_timeout(timeouts.connect)
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(limits)
        .load()
        .await
}

/// Every capability backed by AWS, with the state in DynamoDB table `table`, commands limited
/// by `timeouts.command` unless their task says otherwise (and the default redactor).
pub fn services(config: &aws_config::SdkConfig, table: &str, timeouts: &Timeouts) -> Services {
    services_with(config, table, &Options::new(*timeouts, None))
}

/// [`services`], with commands' output sent to `options.command_log_group`.
pub fn services_with(config: &aws_config::SdkConfig, table: &str, options: &Options) -> Services {
    let timeouts = &options.timeouts;
    let clock = Arc::new(TokioClock);
    let store = DynamoStore::new(config, table);
    Services::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store),
        Arc::new(AutoScalingActions::new(config, clock.clone())),
        Arc::new(
            SsmRunner::new(config, clock.clone())
                .with_execution_timeout(timeouts.command)
                .with_delivery_timeout(timeouts.command_delivery)
                .with_output_log_group(options.command_log_group.clone()),
        ),
        Arc::new(Route53Dns::new(config)),
        Arc::new(SnsReporter::new(config)),
        Arc::new(ParameterStore::new(config)),
        snapshots(config),
        clock,
    )
}

#[cfg(feature = "ec2")]
fn snapshots(config: &aws_config::SdkConfig) -> Option<Arc<dyn Snapshots>> {
    Some(Arc::new(Ec2Snapshots::new(config, Arc::new(TokioClock))))
}

#[cfg(not(feature = "ec2"))]
fn snapshots(_: &aws_config::SdkConfig) -> Option<Arc<dyn Snapshots>> {
    None
}

/// [`load_config`] then [`services_with`].
pub async fn load_services(table: &str, options: &Options) -> Services {
    services_with(&load_config(&options.timeouts).await, table, options)
}

/// The sweep reads the whole table with a `Scan` ([`DynamoStore::items`]).
#[async_trait::async_trait]
impl lifecycle_runtime::sweep::TableItems for DynamoStore {
    async fn items(&self) -> Result<Vec<lifecycle::delivery::Item>, lifecycle::Fault> {
        DynamoStore::items(self).await
    }
}
