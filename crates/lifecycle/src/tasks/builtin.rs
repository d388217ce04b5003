//! Built-in tasks (SPEC 5) and event predicates (SPEC 2.3, 4.1).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Condition, Registry, Task, TaskContext, TaskError};
use crate::event::LifecycleData;
use crate::services::{ActionState, LifecycleResult};

/// How long `complete_lifecycle_action` waits at most for a launch's scaling activity
/// (the invocation's deadline bounds it further).
const ACTIVITY_WAIT: Duration = Duration::from_secs(120);

pub(super) const TASKS: &[&str] = &[
    "complete_lifecycle_action",
    "record_lifecycle_action_heartbeat",
    "remove_from_db",
    "protect_from_scale_in",
    "unprotect_from_scale_in",
    "apply_dns_changes",
];

pub(super) const CONDITIONS: &[&str] = &[
    "is_autoscaling",
    "is_command",
    "is_scheduled",
    "is_lifecycle",
    "is_launching",
    "is_terminating",
    "is_successful",
    "is_warm_pool_entry",
    "is_from_warm_pool",
    "is_new_node",
];

pub(super) fn register(r: &mut Registry) {
    r.register_task(
        "complete_lifecycle_action",
        Arc::new(CompleteLifecycleAction),
    );
    r.register_task("record_lifecycle_action_heartbeat", Arc::new(Heartbeat));
    r.register_task("remove_from_db", Arc::new(RemoveFromDb));
    r.register_task("protect_from_scale_in", Arc::new(Protect(true)));
    r.register_task("unprotect_from_scale_in", Arc::new(Protect(false)));
    r.register_task("apply_dns_changes", Arc::new(ApplyDns));
    for &name in CONDITIONS {
        r.register_condition(name, Arc::new(Predicate(name)));
    }
}

fn lifecycle<'a>(cx: &'a TaskContext<'_>) -> Result<&'a LifecycleData, TaskError> {
    cx.event.lifecycle.as_ref().ok_or_else(|| {
        TaskError::failed(format!(
            "{}: event {:?} has no lifecycle data",
            cx.name, cx.event.name
        ))
    })
}

/// `complete_lifecycle_action`: completes the hook with the lifecycle result; after a launch
/// that continues, waits (bounded) for the instance's scaling activity to finish.
struct CompleteLifecycleAction;

#[async_trait]
impl Task for CompleteLifecycleAction {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let data = lifecycle(cx)?;
        let result = cx.lifecycle_result();
        match cx.services.lifecycle.complete(data, result).await? {
            ActionState::Done => {}
            ActionState::NoActiveAction => {
                tracing::warn!(
                    instance = %data.instance_id,
                    "no active lifecycle action (already completed or expired); nothing to complete"
                );
                return Ok(());
            }
        }
        if cx.event.is_launching() && result == LifecycleResult::Continue {
            let until = cx.deadline.min_with(cx.services.clock.now(), ACTIVITY_WAIT);
            cx.services.lifecycle.wait_for_activity(data, until).await?;
        }
        Ok(())
    }
}

/// `record_lifecycle_action_heartbeat`: extends the hook's timeout.
struct Heartbeat;

#[async_trait]
impl Task for Heartbeat {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let data = lifecycle(cx)?;
        cx.services.lifecycle.heartbeat(data).await?;
        Ok(())
    }
}

/// `remove_from_db`: deletes the node; later state changes of this event stay in memory.
struct RemoveFromDb;

#[async_trait]
impl Task for RemoveFromDb {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let id = cx.node()?.id.clone();
        cx.services.nodes.delete(&id).await?;
        cx.resource.persisted = false;
        Ok(())
    }
}

/// `protect_from_scale_in` / `unprotect_from_scale_in`: instance protection for the node.
struct Protect(bool);

#[async_trait]
impl Task for Protect {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let (group, instance) = match &cx.event.lifecycle {
            Some(l) => (l.auto_scaling_group.clone(), l.instance_id.clone()),
            None => {
                let node = cx.node()?;
                let id = node.id.clone();
                let group = match node.property_str("AutoScalingGroupName") {
                    Some(g) => g,
                    None => cx.services.lifecycle.group_of(&id).await?.ok_or_else(|| {
                        TaskError::failed(format!(
                            "{}: instance {id} is in no Auto Scaling group",
                            cx.name
                        ))
                    })?,
                };
                (group, id)
            }
        };
        cx.services
            .lifecycle
            .set_protection(&group, &[instance], self.0)
            .await
    }
}

/// `apply_dns_changes`: applies the DNS changes collected so far, one batch per zone.
struct ApplyDns;

#[async_trait]
impl Task for ApplyDns {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let batches = std::mem::take(&mut cx.scratch.dns);
        for (zone, changes) in &batches {
            if !changes.is_empty() {
                cx.services.dns.change(zone, changes).await?;
            }
        }
        Ok(())
    }
}

/// An event predicate.
struct Predicate(&'static str);

#[async_trait]
impl Condition for Predicate {
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, TaskError> {
        let e = cx.event;
        let lc = e.lifecycle.as_ref();
        Ok(match self.0 {
            "is_autoscaling" => e.is_autoscaling(),
            "is_command" => e.is_command(),
            "is_scheduled" => e.is_scheduled(),
            "is_lifecycle" => e.is_lifecycle(),
            "is_launching" => e.is_launching(),
            "is_terminating" => e.is_terminating(),
            "is_successful" => cx.is_successful(),
            "is_warm_pool_entry" => lc.is_some_and(LifecycleData::is_warm_pool_entry),
            "is_from_warm_pool" => lc.is_some_and(LifecycleData::is_from_warm_pool),
            "is_new_node" => cx.resource.node.as_ref().is_some_and(|n| n.is_new()),
            other => return Err(TaskError::failed(format!("unknown predicate {other}"))),
        })
    }
}
