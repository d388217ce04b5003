//! Shared helpers for the integration tests: events built directly (no parser), table items,
//! scripted tasks and conditions whose outcome a test chooses by name, a node store that
//! journals every status write, and a clock that can play cloud-init while the dispatcher
//! waits.

// Each test crate uses only part of this module.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use lifecycle::config::{ConditionKind, Definition, TaskKind};
use lifecycle::delivery::{Claim, Claiming, Lease, NodeWrite};
use lifecycle::event::{CommandStatus, Event, LifecycleData, LifecycleTransition, Source};
use lifecycle::{Fault, Node};
use lifecycle_embedded::{LocalStore, ManualClock};
use lifecycle_runtime::capability::NodeStore;
use lifecycle_runtime::{Clock, Condition, Registry, Task, TaskContext};
use serde_json::{Map, Value, json};

/// `detail-type` of a launching lifecycle event.
pub const LAUNCH: &str = "EC2 Instance-launch Lifecycle Action";
/// `detail-type` of a terminating lifecycle event.
pub const TERMINATE: &str = "EC2 Instance-terminate Lifecycle Action";
/// `detail-type` of an SSM command status change.
pub const COMMAND: &str = "EC2 Command Status-change Notification";
/// The Auto Scaling group of every test event.
pub const GROUP: &str = "asg-workers";
/// The status [`Steal`] writes behind the engine's back.
pub const STOLEN: &str = "stolen_by_another_invocation";

fn instance_arn(instance: &str) -> String {
    format!("arn:aws:ec2:eu-west-1:123456789012:instance/{instance}")
}

/// Lifecycle data for `instance`.
pub fn lifecycle_data(instance: &str, transition: LifecycleTransition) -> LifecycleData {
    LifecycleData {
        instance_id: instance.to_owned(),
        auto_scaling_group: GROUP.to_owned(),
        hook_name: format!("{GROUP}-hook"),
        token: Some(format!("token-{instance}")),
        transition,
        metadata: Map::new(),
        origin: None,
        destination: None,
        due_at: None,
    }
}

fn lifecycle_event(instance: &str, name: &str, transition: LifecycleTransition) -> Event {
    let mut e = dated(
        Event::new(Source::AutoScaling, name),
        &format!("evt-{instance}"),
    );
    e.resources = vec![format!(
        "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:1:autoScalingGroupName/{GROUP}"
    )];
    e.lifecycle = Some(lifecycle_data(instance, transition));
    e
}

/// `event` with an id and the time, region and account every test event has.
fn dated(mut event: Event, id: &str) -> Event {
    event.id = Some(id.to_owned());
    event.time = Some("2026-01-01T00:00:00Z".to_owned());
    event.region = Some("eu-west-1".to_owned());
    event.account = Some("123456789012".to_owned());
    event
}

/// A launching lifecycle event for `instance`.
pub fn launch(instance: &str) -> Event {
    lifecycle_event(instance, LAUNCH, LifecycleTransition::Launching)
}

/// A launching lifecycle event for an instance leaving a warm pool (`Origin: WarmPool`).
pub fn launch_from_warm_pool(instance: &str) -> Event {
    let mut e = launch(instance);
    if let Some(lc) = &mut e.lifecycle {
        lc.origin = Some("WarmPool".to_owned());
        lc.destination = Some("AutoScalingGroup".to_owned());
    }
    e
}

/// A terminating lifecycle event for `instance`.
pub fn terminate(instance: &str) -> Event {
    lifecycle_event(instance, TERMINATE, LifecycleTransition::Terminating)
}

/// An SSM command status event with no `resources`.
pub fn command(command_id: &str, status: &str) -> Event {
    let mut e = dated(
        Event::new(Source::Ssm, COMMAND),
        &format!("evt-{command_id}-{status}"),
    );
    e.command = Some(CommandStatus {
        command_id: command_id.to_owned(),
        status: status.to_owned(),
        document_name: Some("AWS-RunShellScript".to_owned()),
        commands: vec!["/bin/true".to_owned()],
        instance_ids: Vec::new(),
    });
    e
}

/// An SSM command status event whose `resources[0]` is `instance`.
pub fn command_on(command_id: &str, status: &str, instance: &str) -> Event {
    let mut e = command(command_id, status);
    e.resources = vec![instance_arn(instance)];
    if let Some(c) = &mut e.command {
        c.instance_ids = vec![instance.to_owned()];
    }
    e
}

/// A scheduled event of the rule `rule` (its name is the rule's name, SPEC 2.3).
pub fn scheduled(rule: &str) -> Event {
    let mut e = dated(Event::new(Source::Schedule, rule), &format!("evt-{rule}"));
    e.resources = vec![format!("arn:aws:events:eu-west-1:123456789012:rule/{rule}")];
    e.rule = Some(rule.to_owned());
    e
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not a JSON object: {other}"),
    }
}

/// A node item as cloud-init writes it.
pub fn node(id: &str, status: &str) -> Map<String, Value> {
    object(json!({
        "Ident": id,
        "ItemStatus": status,
        "ItemType": "worker",
        "InstanceIp": "10.0.0.10",
    }))
}

/// A command record item sent on behalf of `sender` (its name and lifecycle data, SPEC 2.5),
/// running on `instance`.
pub fn command_record(id: &str, sender: &Event, instance: &str) -> Map<String, Value> {
    let mut item = object(json!({
        "Ident": id,
        "ItemType": "command",
        "RunningOn": instance,
        "Comment": format!("{} -> test command", sender.name),
        "Commands": "/bin/true",
        "EventName": sender.name,
    }));
    if let Some(lc) = &sender.lifecycle {
        item.insert(
            "LifecycleData".to_owned(),
            serde_json::to_value(lc).unwrap_or(Value::Null),
        );
    }
    item
}

/// What a scripted task or condition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A task succeeds.
    Ok,
    /// A task or condition fails.
    Err,
    /// A condition is true.
    True,
    /// A condition is false.
    False,
}

/// A task or condition with a fixed outcome. It records nothing: the engine's trace says what
/// ran.
pub struct Scripted {
    name: String,
    outcome: Outcome,
}

impl Scripted {
    fn error(&self) -> Fault {
        Fault::permanent(format!("{} failed (scripted)", self.name))
    }
}

#[async_trait]
impl Task for Scripted {
    async fn run(&self, _cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        match self.outcome {
            Outcome::Err => Err(self.error()),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Condition for Scripted {
    async fn check(&self, _cx: &mut TaskContext<'_>) -> Result<bool, Fault> {
        match self.outcome {
            Outcome::Err => Err(self.error()),
            Outcome::False => Ok(false),
            Outcome::True | Outcome::Ok => Ok(true),
        }
    }
}

/// A task that moves the node in the table behind the engine's back, as the instance's own
/// cloud-init or an operator would: it writes [`STOLEN`] with a compare-and-set that holds
/// no lease.
pub struct Steal;

#[async_trait]
impl Task for Steal {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let node = cx.node()?;
        let (id, status) = (node.id.clone(), node.status.clone());
        cx.services
            .nodes
            .set_status(&id, &status, STOLEN, None)
            .await?;
        Ok(())
    }
}

/// The name under which [`Steal`] is registered.
pub const STEAL: &str = "t_steal";

/// The outcome a name has by convention: tasks `t_ok*` succeed and `t_err*` fail; conditions
/// `c_true*` are true, `c_false*` false and `c_err*` fail.
fn conventional(name: &str, is_task: bool) -> Option<Outcome> {
    if is_task {
        if name.starts_with("t_ok") {
            return Some(Outcome::Ok);
        }
        if name.starts_with("t_err") {
            return Some(Outcome::Err);
        }
    } else {
        if name.starts_with("c_true") {
            return Some(Outcome::True);
        }
        if name.starts_with("c_false") {
            return Some(Outcome::False);
        }
        if name.starts_with("c_err") {
            return Some(Outcome::Err);
        }
    }
    None
}

/// A scripted task or condition for every name `config` uses that is neither built in nor
/// declared. `overrides` set outcomes by name (the last one for a name wins); other names
/// follow the naming convention ([`conventional`]); `t_steal` is [`Steal`]. A name with
/// neither is a mistake in the test.
pub fn registry_for(config: &str, overrides: &[(&str, Outcome)]) -> Registry {
    let def = Definition::from_yaml(config).unwrap_or_else(|e| panic!("test config: {e}"));
    let mut registry = Registry::new();
    let outcome = |name: &str, is_task: bool| {
        overrides
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, o)| *o)
            .or_else(|| conventional(name, is_task))
            .unwrap_or_else(|| panic!("no outcome for test name {name:?}"))
    };
    for (_, name, kind) in def.tasks() {
        if !matches!(kind, TaskKind::External) {
            continue;
        }
        if name == STEAL {
            registry.register_task(name, Arc::new(Steal));
            continue;
        }
        let scripted = Scripted {
            outcome: outcome(name, true),
            name: name.to_owned(),
        };
        registry.register_task(name, Arc::new(scripted));
    }
    for (_, name, kind) in def.conditions() {
        if !matches!(kind, ConditionKind::External) {
            continue;
        }
        let scripted = Scripted {
            outcome: outcome(name, false),
            name: name.to_owned(),
        };
        registry.register_condition(name, Arc::new(scripted));
    }
    registry
}

/// One status write that reached the store: `(id, expected, new)`.
pub type Write = (String, String, String);

/// A [`NodeStore`] over a [`LocalStore`] that journals every successful status write
/// (`set_status`, and `write` with a status).
#[derive(Clone)]
pub struct Journal {
    inner: LocalStore,
    writes: Arc<Mutex<Vec<Write>>>,
}

impl Journal {
    /// A journal over `inner`.
    pub fn new(inner: LocalStore) -> Self {
        Journal {
            inner,
            writes: Arc::default(),
        }
    }

    /// The status writes that succeeded, in order.
    pub fn writes(&self) -> Vec<Write> {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl NodeStore for Journal {
    async fn get(&self, id: &str) -> Result<Option<Node>, Fault> {
        self.inner.get(id).await
    }

    async fn put(&self, node: &Node) -> Result<(), Fault> {
        self.inner.put(node).await
    }

    async fn claim(
        &self,
        id: &str,
        lease: &Lease,
        with: Claiming<'_>,
        now: SystemTime,
    ) -> Result<Claim, Fault> {
        self.inner.claim(id, lease, with, now).await
    }
    async fn write(&self, id: &str, owner: &str, write: &NodeWrite) -> Result<(), Fault> {
        self.inner.write(id, owner, write).await?;
        if let (Some((expected, new)), Ok(mut w)) = (&write.status, self.writes.lock()) {
            w.push((id.to_owned(), expected.clone(), new.clone()));
        }
        Ok(())
    }

    async fn release(&self, id: &str, owner: &str) -> Result<(), Fault> {
        self.inner.release(id, owner).await
    }

    async fn set_status(
        &self,
        id: &str,
        expected: &str,
        new: &str,
        owner: Option<&str>,
    ) -> Result<(), Fault> {
        self.inner.set_status(id, expected, new, owner).await?;
        if let Ok(mut w) = self.writes.lock() {
            w.push((id.to_owned(), expected.to_owned(), new.to_owned()));
        }
        Ok(())
    }

    async fn set_properties(&self, id: &str, properties: &Map<String, Value>) -> Result<(), Fault> {
        self.inner.set_properties(id, properties).await
    }

    async fn remove(&self, id: &str, until: SystemTime) -> Result<(), Fault> {
        self.inner.remove(id, until).await
    }

    async fn by_type(&self, item_type: &str) -> Result<Vec<Node>, Fault> {
        self.inner.by_type(item_type).await
    }
}

/// A [`ManualClock`] that can play cloud-init: after its `n`th sleep it writes an item into
/// the store (as the instance's last cloud-init line would), then keeps counting sleeps.
pub struct CloudInitClock {
    inner: ManualClock,
    start: SystemTime,
    store: LocalStore,
    sleeps: Mutex<u32>,
    script: Option<(u32, Map<String, Value>)>,
}

impl CloudInitClock {
    /// A clock at the [`ManualClock`] default epoch; `script` = (after which sleep, item).
    pub fn new(store: LocalStore, script: Option<(u32, Map<String, Value>)>) -> Self {
        let inner = ManualClock::default();
        CloudInitClock {
            start: inner.now(),
            inner,
            store,
            sleeps: Mutex::new(0),
            script,
        }
    }

    /// How far time moved since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.inner
            .now()
            .duration_since(self.start)
            .unwrap_or_default()
    }

    /// How many times something slept.
    pub fn sleeps(&self) -> u32 {
        self.sleeps.lock().map(|s| *s).unwrap_or_default()
    }
}

#[async_trait]
impl Clock for CloudInitClock {
    fn now(&self) -> SystemTime {
        self.inner.now()
    }

    async fn sleep(&self, duration: Duration) {
        self.inner.sleep(duration).await;
        let n = match self.sleeps.lock() {
            Ok(mut s) => {
                *s += 1;
                *s
            }
            Err(_) => return,
        };
        if let Some((after, item)) = &self.script
            && *after == n
        {
            self.store
                .insert_item(item.clone())
                .unwrap_or_else(|e| panic!("cloud-init write: {e}"));
        }
    }
}
