//! Tasks and conditions: the work a trigger does and the checks that decide whether it fires.
//!
//! A [`Task`] or [`Condition`] runs with a [`TaskContext`]: the event, the node, the
//! [`Services`]. The definition names each one; [`Bound`] binds every name once, when a
//! dispatcher is built: built-in names (`builtin.rs`) and declared ones (`declared/`) to the
//! runtime's own implementations, external names to what the embedding program put in its
//! [`Registry`] — and refuses a definition whose external names the registry lacks.

mod builtin;
pub(crate) mod declared;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use lifecycle::config::{ConditionKind, ConfigErrors, Definition, Role, TaskKind};
use lifecycle::event::{Event, LifecycleResult};
use lifecycle::node::ATTR_SECRET_PROPERTIES;
use lifecycle::{Deadline, Fault, Node, Sensitive};
use serde_json::{Map, Value};

use crate::capability::{RecordChange, Services};

/// The resource an event operates on: the node, if any, and whether its state changes are
/// written to the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The node (possibly one that is not in the table yet: status `new`).
    pub node: Option<Node>,
    /// True while state changes are persisted (a node was loaded and not removed).
    pub persisted: bool,
}

/// Work collected during one event and applied together (e.g. one Route 53 batch per event).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scratch {
    /// DNS changes waiting to be applied, by hosted zone.
    pub dns: BTreeMap<Sensitive, Vec<RecordChange>>,
}

/// What a task or condition sees and may change.
pub struct TaskContext<'a> {
    /// The event being processed.
    pub event: &'a Event,
    /// True once the event has been marked failed during processing.
    pub event_failed: bool,
    /// The resource.
    pub resource: &'a mut Resource,
    /// Collected work.
    pub scratch: &'a mut Scratch,
    /// The capabilities.
    pub services: &'a Services,
    /// No wait may outlive this.
    pub deadline: Deadline,
    /// The invocation's token and lease: what its conditional writes carry (SPEC 9).
    pub lease: &'a lifecycle::delivery::Lease,
    /// The dispatcher's tunables (how long a tombstone lasts, ...).
    pub rules: &'a lifecycle::load::LoadRules,
    /// The transition being run: what `{transition.FIELD}` placeholders render.
    pub transition: Option<lifecycle::config::template::TransitionFacts>,
    /// The registered name the task or condition runs under.
    pub name: &'a str,
}

impl TaskContext<'_> {
    /// The lifecycle result (SPEC 2.3) of the event as it stands.
    pub fn lifecycle_result(&self) -> LifecycleResult {
        self.event.lifecycle_result(self.event_failed)
    }

    /// The node, or an error naming the task that needed one.
    ///
    /// # Errors
    /// When the event has no node.
    pub fn node(&self) -> Result<&Node, Fault> {
        self.resource
            .node
            .as_ref()
            .ok_or_else(|| Fault::permanent(format!("{}: the event has no node", self.name)))
    }

    /// Sets rendered values as properties of the node, in memory and (while persisted) in
    /// the table: the real text is stored. A value that came from a secret
    /// ([`Sensitive::is_secret`]) under a name that does not already mark it secret is
    /// recorded in the node's [`ATTR_SECRET_PROPERTIES`], in the same write, so that it is
    /// masked wherever the node is shown — in this invocation and every later one (SPEC 9).
    /// A recorded name stays recorded (a later plain value under it is masked too).
    ///
    /// # Errors
    /// When there is no node, or the store fails (its message with the secret values
    /// masked).
    pub async fn set_sensitive_properties(
        &mut self,
        properties: Vec<(String, Sensitive)>,
    ) -> Result<(), Fault> {
        let name = self.name.to_owned();
        let node = self
            .resource
            .node
            .as_ref()
            .ok_or_else(|| Fault::permanent(format!("{name}: the event has no node")))?;
        let redactor = self.services.redactor.for_node(node);
        let tainted: Vec<&str> = properties
            .iter()
            .filter(|(k, v)| v.is_secret() && !redactor.is_secret(k))
            .map(|(k, _)| k.as_str())
            .collect();
        let mut props = Map::new();
        if !tainted.is_empty() {
            // An unreadable record masks every property (Redactor::for_node); rewriting it,
            // keep that so by recording every property the node has.
            let mut names = node
                .secret_properties()
                .unwrap_or_else(|_| node.properties.keys().cloned().collect());
            names.remove(ATTR_SECRET_PROPERTIES);
            names.extend(tainted.iter().map(|k| (*k).to_owned()));
            props.insert(
                ATTR_SECRET_PROPERTIES.to_owned(),
                Value::from(names.into_iter().collect::<Vec<_>>()),
            );
        }
        for (k, v) in &properties {
            props.insert(k.clone(), Value::String(v.expose().to_owned()));
        }
        self.set_properties(props)
            .await
            .map_err(|e| e.scrubbed(properties.iter().map(|(_, v)| v)))
    }

    /// Sets properties on the node, in memory and (while persisted) in the table. The values
    /// are taken as plain: for values rendered from templates use
    /// [`TaskContext::set_sensitive_properties`], which keeps their taint.
    ///
    /// # Errors
    /// When there is no node, or the store fails.
    pub async fn set_properties(&mut self, properties: Map<String, Value>) -> Result<(), Fault> {
        let persisted = self.resource.persisted;
        let name = self.name.to_owned();
        let node = self
            .resource
            .node
            .as_mut()
            .ok_or_else(|| Fault::permanent(format!("{name}: the event has no node")))?;
        if persisted {
            self.services
                .nodes
                .set_properties(&node.id, &properties)
                .await?;
        }
        node.properties.extend(properties);
        Ok(())
    }
}

/// A unit of work run by a trigger (`prepare`, `before`, `after`).
#[async_trait]
pub trait Task: Send + Sync {
    /// Does the work.
    ///
    /// # Errors
    /// A [`Fault`]; the engine then follows SPEC 4.3.
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault>;
}

/// A check that decides whether a trigger fires (`conditions`, `unless`).
#[async_trait]
pub trait Condition: Send + Sync {
    /// Evaluates the check.
    ///
    /// # Errors
    /// A [`Fault`]; the engine then follows SPEC 4.3.
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, Fault>;
}

/// Tasks and conditions a program registers by name, for the names a configuration uses
/// that are neither built in nor declared (SPEC 3.1).
#[derive(Clone, Default)]
pub struct Registry {
    tasks: BTreeMap<String, Arc<dyn Task>>,
    conditions: BTreeMap<String, Arc<dyn Condition>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tasks", &self.tasks.keys().collect::<Vec<_>>())
            .field("conditions", &self.conditions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) a task.
    pub fn register_task(&mut self, name: impl Into<String>, task: Arc<dyn Task>) -> &mut Self {
        let name = name.into();
        self.conditions.remove(&name);
        self.tasks.insert(name, task);
        self
    }

    /// Registers (or replaces) a condition.
    pub fn register_condition(
        &mut self,
        name: impl Into<String>,
        condition: Arc<dyn Condition>,
    ) -> &mut Self {
        let name = name.into();
        self.tasks.remove(&name);
        self.conditions.insert(name, condition);
        self
    }

    /// What `name` is registered as, if anything.
    pub fn role(&self, name: &str) -> Option<Role> {
        if self.tasks.contains_key(name) {
            Some(Role::Task)
        } else if self.conditions.contains_key(name) {
            Some(Role::Condition)
        } else {
            None
        }
    }
}

/// Every task and condition of a [`Definition`], bound to what runs it, indexed by id.
#[derive(Clone)]
pub struct Bound {
    tasks: Vec<Arc<dyn Task>>,
    conditions: Vec<Arc<dyn Condition>>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("tasks", &self.tasks.len())
            .field("conditions", &self.conditions.len())
            .finish()
    }
}

impl Bound {
    /// Binds every name of `def`: built-in and declared names to the runtime's own tasks,
    /// external names to `registry`.
    ///
    /// # Errors
    /// Every use of an external name `registry` lacks (or has in the other role), each
    /// naming the transition, trigger and key.
    pub fn new(def: &Definition, registry: &Registry) -> Result<Self, ConfigErrors> {
        let tasks: Option<Vec<Arc<dyn Task>>> = def
            .tasks()
            .map(|(_, name, kind)| match kind {
                TaskKind::Builtin(b) => Some(builtin::task(*b)),
                TaskKind::Declared(d) => Some(declared::task(d)),
                TaskKind::External => registry.tasks.get(name).cloned(),
            })
            .collect();
        let conditions: Option<Vec<Arc<dyn Condition>>> = def
            .conditions()
            .map(|(_, name, kind)| match kind {
                ConditionKind::Builtin(p) => Some(builtin::condition(*p)),
                ConditionKind::Declared(d) => Some(declared::condition(d)),
                ConditionKind::External => registry.conditions.get(name).cloned(),
            })
            .collect();
        match (tasks, conditions) {
            (Some(tasks), Some(conditions)) => Ok(Bound { tasks, conditions }),
            _ => Err(ConfigErrors(def.unregistered(|name| registry.role(name)))),
        }
    }

    /// The task with this id.
    pub fn task(&self, id: lifecycle::config::TaskId) -> &Arc<dyn Task> {
        &self.tasks[id.index()]
    }

    /// The condition with this id.
    pub fn condition(&self, id: lifecycle::config::CondId) -> &Arc<dyn Condition> {
        &self.conditions[id.index()]
    }
}
