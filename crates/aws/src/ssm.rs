//! [`SsmRunner`]: shell commands through SSM Run Command.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::config::retry::RetryConfig;
use aws_sdk_ssm::types::{CloudWatchOutputConfig, InstanceInformationStringFilter, PingStatus};
use lifecycle::config::declared::SSM_COMMENT_MAX;
use lifecycle::delivery::key_line;
use lifecycle::{Fault, Sensitive};
use lifecycle_runtime::capability::{CommandRunner, Secrets, ShellCommand};
use lifecycle_runtime::{Clock, poll_until};

use crate::error::{fault, permanent};

/// How often agent status is polled.
const ONLINE_POLL: Duration = Duration::from_secs(5);

/// The document that runs shell lines on Linux.
pub const SHELL_DOCUMENT: &str = "AWS-RunShellScript";

/// The `executionTimeout` of a command whose task sets none: 10 minutes, always sent
/// explicitly (the document's own default is an hour) so it cannot race the hook's timeout.
pub const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(600);

/// How long SSM tries to deliver a command before giving up on an instance
/// (`TimeoutSeconds`, SSM's default an hour): ten minutes, always sent, so a command that can
/// never start reports `DeliveryTimedOut` well before the lifecycle hook times out.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);

/// SSM through the AWS SDK.
#[derive(Clone)]
pub struct SsmRunner {
    client: Client,
    clock: Arc<dyn Clock>,
    execution_timeout: Duration,
    delivery_timeout: Duration,
    log_group: Option<String>,
}

impl std::fmt::Debug for SsmRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmRunner").finish_non_exhaustive()
    }
}

impl SsmRunner {
    /// SSM on `config`, waiting with `clock`.
    pub fn new(config: &aws_config::SdkConfig, clock: Arc<dyn Clock>) -> Self {
        Self::with_client(Client::new(config), clock)
    }

    /// SSM with an existing client.
    pub fn with_client(client: Client, clock: Arc<dyn Clock>) -> Self {
        SsmRunner {
            client,
            clock,
            execution_timeout: DEFAULT_EXECUTION_TIMEOUT,
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            log_group: None,
        }
    }

    /// How long SSM tries to deliver a command (`TimeoutSeconds`; default 600 s; SSM accepts
    /// 30 s to 30 days).
    pub fn with_delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// Sends every command's output to this CloudWatch Logs group
    /// (`CloudWatchOutputConfig`), so a failed join can be read after the fact. The
    /// instances' role must allow writing to it.
    pub fn with_output_log_group(mut self, log_group: Option<String>) -> Self {
        self.log_group = log_group.filter(|g| !g.is_empty());
        self
    }

    /// The `executionTimeout` of a command whose task sets none (default 600 s).
    pub fn with_execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = timeout;
        self
    }

    async fn offline(&self, instance_ids: &[String]) -> Result<Vec<String>, Fault> {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .set_values(Some(instance_ids.to_vec()))
            .build()
            .map_err(|e| permanent("DescribeInstanceInformation", e))?;
        let mut pages = self
            .client
            .describe_instance_information()
            .filters(filter)
            .into_paginator()
            .send();
        let mut online = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fault("DescribeInstanceInformation", &e))?;
            for info in page.instance_information_list() {
                if info.ping_status() == Some(&PingStatus::Online)
                    && let Some(id) = info.instance_id()
                {
                    online.push(id.to_owned());
                }
            }
        }
        Ok(instance_ids
            .iter()
            .filter(|id| !online.contains(id))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl CommandRunner for SsmRunner {
    async fn wait_online(&self, instance_ids: &[String], until: SystemTime) -> Result<(), Fault> {
        let waited = poll_until(self.clock.as_ref(), until, ONLINE_POLL, || async {
            let offline = match self.offline(instance_ids).await {
                Ok(offline) => offline,
                // An agent that has not registered yet (InvalidInstanceId, transient for this
                // call): keep waiting, as for one that is registered but offline.
                Err(e) if e.is_transient() => {
                    tracing::info!(error = %e, "SSM does not know the agent yet");
                    instance_ids.to_vec()
                }
                Err(e) => return Err(e),
            };
            if offline.is_empty() {
                return Ok(ControlFlow::Break(()));
            }
            tracing::info!(instances = ?offline, "waiting for the SSM agent");
            Ok(ControlFlow::Continue(offline))
        })
        .await?;
        waited.map_err(|offline| {
            Fault::transient(format!(
                "SSM agent not online on {} when the wait ran out",
                offline.join(", ")
            ))
        })
    }

    async fn send(&self, command: &ShellCommand) -> Result<String, Fault> {
        let comment: String = command.comment.chars().take(SSM_COMMENT_MAX).collect();
        let lines: Vec<String> = command
            .commands
            .iter()
            .map(|c| c.expose().to_owned())
            .collect();
        let out = self
            .client
            .send_command()
            .document_name(SHELL_DOCUMENT)
            .set_instance_ids(Some(command.instance_ids.clone()))
            .comment(comment)
            .parameters("commands", lines)
            .parameters(
                "executionTimeout",
                vec![
                    command
                        .execution_timeout
                        .unwrap_or(self.execution_timeout)
                        .as_secs()
                        .to_string(),
                ],
            )
            .timeout_seconds(i32::try_from(self.delivery_timeout.as_secs()).unwrap_or(i32::MAX))
            .set_cloud_watch_output_config(self.log_group.as_ref().map(|group| {
                CloudWatchOutputConfig::builder()
                    .cloud_watch_output_enabled(true)
                    .cloud_watch_log_group_name(group)
                    .build()
            }))
            // No SDK retry: SSM has no idempotency token, so a retried SendCommand whose first
            // attempt went through would run the commands twice. A failure is transient
            // (outcome unknown) and the caller's send guard looks for the command before
            // anything is sent again (SPEC 9).
            .customize()
            .config_override(
                aws_sdk_ssm::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| fault("SendCommand", &e))?;
        out.command()
            .and_then(|c| c.command_id())
            .map(str::to_owned)
            .ok_or_else(|| Fault::transient("SendCommand: the answer has no command id"))
    }

    async fn find_sent(&self, instance_ids: &[String], key: &str) -> Result<Option<String>, Fault> {
        let Some(instance) = instance_ids.first() else {
            return Ok(None);
        };
        let line = key_line(key);
        let mut pages = self
            .client
            .list_commands()
            .instance_id(instance)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fault("ListCommands", &e))?;
            for c in page.commands() {
                let ours = c
                    .parameters()
                    .and_then(|p| p.get("commands"))
                    .and_then(|lines| lines.get(1))
                    == Some(&line);
                if ours && let Some(id) = c.command_id() {
                    return Ok(Some(id.to_owned()));
                }
            }
        }
        Ok(None)
    }
}

/// SSM Parameter Store through the AWS SDK.
#[derive(Debug, Clone)]
pub struct ParameterStore {
    client: Client,
}

impl ParameterStore {
    /// Parameter Store on `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        ParameterStore {
            client: Client::new(config),
        }
    }
}

#[async_trait]
impl Secrets for ParameterStore {
    async fn read(&self, name: &Sensitive, decrypt: bool) -> Result<String, Fault> {
        let out = self
            .client
            .get_parameter()
            .name(name.expose())
            .with_decryption(decrypt)
            .send()
            .await
            .map_err(|e| fault("GetParameter", &e))?;
        out.parameter()
            .and_then(|p| p.value())
            .map(str::to_owned)
            .ok_or_else(|| Fault::permanent(format!("GetParameter: {name} has no value")))
    }
}
