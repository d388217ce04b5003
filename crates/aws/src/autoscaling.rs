//! [`AutoScalingActions`]: lifecycle actions, scaling activities and instance protection.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_autoscaling::Client;
use lifecycle::event::{LifecycleData, LifecycleResult, LifecycleTransition, decode_metadata};
use lifecycle::reconcile::{Hook, Instance};
use lifecycle::{Fault, FaultKind};
use lifecycle_runtime::capability::{ActionState, GroupInstance, LifecycleActions};
use lifecycle_runtime::{Clock, poll_until};

use crate::error::fault;

/// How often a scaling activity is polled.
const ACTIVITY_POLL: Duration = Duration::from_secs(5);

/// A hook's heartbeat timeout, by (group, hook).
type HookTimeouts = std::collections::HashMap<(String, String), Duration>;

/// Auto Scaling through the AWS SDK.
#[derive(Clone)]
pub struct AutoScalingActions {
    client: Client,
    clock: Arc<dyn Clock>,
    hooks: Arc<std::sync::Mutex<HookTimeouts>>,
}

impl std::fmt::Debug for AutoScalingActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoScalingActions").finish_non_exhaustive()
    }
}

impl AutoScalingActions {
    /// Auto Scaling on `config`, waiting with `clock`.
    pub fn new(config: &aws_config::SdkConfig, clock: Arc<dyn Clock>) -> Self {
        Self::with_client(Client::new(config), clock)
    }

    /// Auto Scaling with an existing client.
    pub fn with_client(client: Client, clock: Arc<dyn Clock>) -> Self {
        AutoScalingActions {
            client,
            clock,
            hooks: Arc::default(),
        }
    }

    /// Runs `call` by token (when there is one), then by instance id: when the event has no
    /// token, or when AWS knows no action for the token and the instance waits in the state
    /// this action puts it in ([`LifecycleData::wait_state`]). A dead token with the instance
    /// elsewhere — a stale warm-pool entry event while the instance waits to enter service,
    /// say — must not complete the instance's *other* action. AWS answers for an action that
    /// is over (completed, abandoned, timed out) with a fault of kind
    /// [`FaultKind::NotFound`]: that is [`ActionState::NoActiveAction`].
    async fn by_token_then_instance<F, Fut>(
        &self,
        operation: &str,
        data: &LifecycleData,
        call: F,
    ) -> Result<ActionState, Fault>
    where
        F: Fn(Option<String>, Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<(), Fault>>,
    {
        if let Some(token) = &data.token {
            match call(Some(token.clone()), None).await {
                Ok(()) => return Ok(ActionState::Done),
                Err(f) if f.kind() == FaultKind::NotFound => {
                    let waits = self
                        .instance(&data.instance_id)
                        .await?
                        .map(|i| i.lifecycle_state);
                    if waits.as_deref() != Some(data.wait_state()) {
                        tracing::info!(%operation, instance = %data.instance_id, state = ?waits, expected = %data.wait_state(), "no active action for the token, and the instance is not waiting on one like it: nothing to do");
                        return Ok(ActionState::NoActiveAction);
                    }
                    tracing::info!(%operation, instance = %data.instance_id, "no active action for the token; the instance waits in {}: trying its id", data.wait_state());
                }
                Err(f) => return Err(f),
            }
        }
        match call(None, Some(data.instance_id.clone())).await {
            Ok(()) => Ok(ActionState::Done),
            Err(f) if f.kind() == FaultKind::NotFound => Ok(ActionState::NoActiveAction),
            Err(f) => Err(f),
        }
    }

    /// The progress of the newest activity that names the instance, from the newest page of
    /// the group's activities only (they come newest first): a launch being completed is
    /// recent, and each poll must not page through the group's whole history (SPEC 5).
    async fn activity_progress(&self, data: &LifecycleData) -> Result<Option<i32>, Fault> {
        let page = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(&data.auto_scaling_group)
            .send()
            .await
            .map_err(|e| fault("DescribeScalingActivities", &e))?;
        Ok(page
            .activities()
            .iter()
            .find(|a| {
                a.description()
                    .is_some_and(|d| d.contains(&data.instance_id))
                    || a.details().is_some_and(|d| d.contains(&data.instance_id))
            })
            .map(|a| a.progress().unwrap_or(0)))
    }
}

#[async_trait]
impl LifecycleActions for AutoScalingActions {
    async fn complete(
        &self,
        data: &LifecycleData,
        result: LifecycleResult,
    ) -> Result<ActionState, Fault> {
        self.by_token_then_instance("CompleteLifecycleAction", data, |token, instance| {
            let req = self
                .client
                .complete_lifecycle_action()
                .auto_scaling_group_name(&data.auto_scaling_group)
                .lifecycle_hook_name(&data.hook_name)
                .lifecycle_action_result(result.as_str())
                .set_lifecycle_action_token(token)
                .set_instance_id(instance);
            async move {
                req.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| fault("CompleteLifecycleAction", &e))
            }
        })
        .await
    }

    async fn heartbeat(&self, data: &LifecycleData) -> Result<ActionState, Fault> {
        self.by_token_then_instance("RecordLifecycleActionHeartbeat", data, |token, instance| {
            let req = self
                .client
                .record_lifecycle_action_heartbeat()
                .auto_scaling_group_name(&data.auto_scaling_group)
                .lifecycle_hook_name(&data.hook_name)
                .set_lifecycle_action_token(token)
                .set_instance_id(instance);
            async move {
                req.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| fault("RecordLifecycleActionHeartbeat", &e))
            }
        })
        .await
    }

    async fn wait_for_activity(
        &self,
        data: &LifecycleData,
        until: SystemTime,
    ) -> Result<(), Fault> {
        let waited = poll_until(self.clock.as_ref(), until, ACTIVITY_POLL, || async {
            Ok(match self.activity_progress(data).await? {
                None => {
                    tracing::debug!(instance = %data.instance_id, "no scaling activity mentions the instance; nothing to wait for");
                    ControlFlow::Break(())
                }
                Some(p) if p >= 100 => ControlFlow::Break(()),
                Some(p) => ControlFlow::Continue(p),
            })
        })
        .await?;
        waited.map_err(|p| {
            Fault::transient(format!(
                "scaling activity of {} still at {p}% when the wait ran out",
                data.instance_id
            ))
        })
    }

    async fn heartbeat_timeout(&self, group: &str, hook: &str) -> Result<Option<Duration>, Fault> {
        let key = (group.to_owned(), hook.to_owned());
        if let Some(t) = self.hooks.lock().ok().and_then(|h| h.get(&key).copied()) {
            return Ok(Some(t));
        }
        let out = self
            .client
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .lifecycle_hook_names(hook)
            .send()
            .await
            .map_err(|e| fault("DescribeLifecycleHooks", &e))?;
        let timeout = out
            .lifecycle_hooks()
            .iter()
            .find(|h| h.lifecycle_hook_name() == Some(hook))
            .and_then(|h| h.heartbeat_timeout())
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs);
        if let (Some(t), Ok(mut hooks)) = (timeout, self.hooks.lock()) {
            hooks.insert(key, t);
        }
        Ok(timeout)
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<GroupInstance>, Fault> {
        let out = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| fault("DescribeAutoScalingInstances", &e))?;
        Ok(out
            .auto_scaling_instances()
            .iter()
            .find(|i| i.instance_id() == Some(instance_id))
            .and_then(|i| {
                Some(GroupInstance {
                    group: i.auto_scaling_group_name()?.to_owned(),
                    lifecycle_state: i.lifecycle_state().unwrap_or_default().to_owned(),
                })
            }))
    }

    async fn instances(&self, instance_ids: &[String]) -> Result<Vec<Instance>, Fault> {
        let mut out = Vec::new();
        for chunk in instance_ids.chunks(50) {
            let mut next: Option<String> = None;
            loop {
                let page = self
                    .client
                    .describe_auto_scaling_instances()
                    .set_instance_ids(Some(chunk.to_vec()))
                    .max_records(50)
                    .set_next_token(next.take())
                    .send()
                    .await
                    .map_err(|e| fault("DescribeAutoScalingInstances", &e))?;
                out.extend(page.auto_scaling_instances().iter().filter_map(|i| {
                    Some(Instance {
                        id: i.instance_id()?.to_owned(),
                        group: i.auto_scaling_group_name()?.to_owned(),
                        lifecycle_state: i.lifecycle_state().unwrap_or_default().to_owned(),
                    })
                }));
                match page.next_token() {
                    Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    async fn group_instances(&self, group: &str) -> Result<Vec<Instance>, Fault> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .map_err(|e| fault("DescribeAutoScalingGroups", &e))?;
        let Some(found) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(group))
        else {
            return Err(Fault::permanent(format!(
                "DescribeAutoScalingGroups: there is no Auto Scaling group {group:?}"
            )));
        };
        Ok(found
            .instances()
            .iter()
            .filter_map(|i| {
                Some(Instance {
                    id: i.instance_id()?.to_owned(),
                    group: group.to_owned(),
                    lifecycle_state: i
                        .lifecycle_state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn hooks(&self, group: &str) -> Result<Vec<Hook>, Fault> {
        let out = self
            .client
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| fault("DescribeLifecycleHooks", &e))?;
        let hooks: Vec<Hook> = out
            .lifecycle_hooks()
            .iter()
            .filter_map(|h| {
                let transition = LifecycleTransition::parse(h.lifecycle_transition()?)?;
                let metadata = h
                    .notification_metadata()
                    .map(|m| decode_metadata(&serde_json::Value::String(m.to_owned())).0)
                    .unwrap_or_default();
                Some(Hook {
                    group: group.to_owned(),
                    name: h.lifecycle_hook_name()?.to_owned(),
                    transition,
                    heartbeat_timeout: h
                        .heartbeat_timeout()
                        .and_then(|s| u64::try_from(s).ok())
                        .map(Duration::from_secs),
                    default_result: match h.default_result() {
                        Some("CONTINUE") => LifecycleResult::Continue,
                        _ => LifecycleResult::Abandon,
                    },
                    metadata,
                })
            })
            .collect();
        if let Ok(mut cache) = self.hooks.lock() {
            for h in &hooks {
                if let Some(t) = h.heartbeat_timeout {
                    cache.insert((group.to_owned(), h.name.clone()), t);
                }
            }
        }
        Ok(hooks)
    }

    async fn set_protection(
        &self,
        group: &str,
        instance_ids: &[String],
        protected: bool,
    ) -> Result<(), Fault> {
        self.client
            .set_instance_protection()
            .auto_scaling_group_name(group)
            .set_instance_ids(Some(instance_ids.to_vec()))
            .protected_from_scale_in(protected)
            .send()
            .await
            .map_err(|e| fault("SetInstanceProtection", &e))?;
        Ok(())
    }
}
