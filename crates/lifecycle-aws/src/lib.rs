//! AWS backends of autoscaling-lifecycle: the core's capability traits implemented with the
//! AWS SDK for Rust.
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
//! Every failure is a typed error that says whether a retry can help: throttling, timeouts,
//! dispatch failures and 5xx responses are retryable; validation errors are not.

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

pub use autoscaling::AutoScalingActions;
pub use clock::TokioClock;
pub use dynamo::{
    ATTR_EXPIRES, COMMAND_TTL, DynamoStore, TYPE_INDEX, from_attribute, to_attribute,
};
#[cfg(feature = "ec2")]
pub use ec2::Ec2Snapshots;
pub use route53::Route53Dns;
pub use sns::SnsReporter;
pub use ssm::{ParameterStore, SsmRunner};

use lifecycle::redact::Redactor;
use lifecycle::services::Services;

/// Loads the AWS configuration from the environment.
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Every capability backed by AWS, with the state in DynamoDB table `table`.
pub fn services(config: &aws_config::SdkConfig, table: &str) -> Services {
    let clock = Arc::new(TokioClock);
    Services {
        nodes: Arc::new(DynamoStore::new(config, table)),
        commands: Arc::new(DynamoStore::new(config, table)),
        lifecycle: Arc::new(AutoScalingActions::new(config, clock.clone())),
        runner: Arc::new(SsmRunner::new(config, clock.clone())),
        dns: Arc::new(Route53Dns::new(config)),
        reporter: Arc::new(SnsReporter::new(config)),
        secrets: Arc::new(ParameterStore::new(config)),
        snapshots: snapshots(config),
        clock,
        redactor: Redactor::default(),
    }
}

#[cfg(feature = "ec2")]
fn snapshots(config: &aws_config::SdkConfig) -> Option<Arc<dyn lifecycle::services::Snapshots>> {
    Some(Arc::new(Ec2Snapshots::new(config, Arc::new(TokioClock))))
}

#[cfg(not(feature = "ec2"))]
fn snapshots(_: &aws_config::SdkConfig) -> Option<Arc<dyn lifecycle::services::Snapshots>> {
    None
}

/// [`load_config`] then [`services`].
pub async fn load_services(table: &str) -> Services {
    services(&load_config().await, table)
}
