//! Configuration: YAML in, an immutable [`Definition`] out (SPEC 3).
//!
//! Two steps, each reporting every error at once:
//! 1. [`RawConfig::from_yaml`] checks the shape — known keys, types, required fields — and
//!    yields plain data;
//! 2. [`Definition::compile`] interns states, orders triggers, and resolves every task and
//!    condition name against a [`Registry`] (built-ins, the `tasks:` section, and whatever the
//!    embedding program registered).
//!
//! Nothing downstream validates again.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::tasks::{Condition, Registered, Registry, Task, declared};

/// The state every error leads to (SPEC 4.3).
pub const FAILURE_STATE: &str = "failure";

/// The trigger name that is reserved and refused.
pub const RESERVED_TRIGGER: &str = "trigger";

/// What kind of problem a [`ConfigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not YAML, or not the right shape at all.
    Syntax,
    /// A key that is not part of the format.
    UnknownKey,
    /// A value of the wrong type.
    WrongType,
    /// A required key is missing or empty.
    Missing,
    /// A trigger uses the reserved name `trigger`.
    ReservedName,
    /// Two transitions lead to the same destination.
    DuplicateDest,
    /// A task or condition name that nothing registers.
    UnknownName,
    /// A task used as a condition, or a condition used as a task.
    WrongKind,
    /// `initial_state` is not a state of the machine.
    UnknownState,
    /// A declared task (`tasks:` section) is wrong.
    DeclaredTask,
}

/// One problem in a configuration, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What kind of problem.
    pub kind: ConfigErrorKind,
    /// Where: e.g. `transitions[1] (joined -> dns_updated), trigger update_dns, key conditions`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "configuration has {n} error{}",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

/// A trigger as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawTrigger {
    /// `name`.
    pub name: String,
    /// `prepare` task names.
    pub prepare: Vec<String>,
    /// `conditions` names.
    pub conditions: Vec<String>,
    /// `unless` names.
    pub unless: Vec<String>,
    /// `before` task names.
    pub before: Vec<String>,
    /// `after` task names.
    pub after: Vec<String>,
    /// `stop_after_trigger`.
    pub stop_after_trigger: bool,
    /// `ignore_errors`.
    pub ignore_errors: bool,
}

/// A transition as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawTransition {
    /// `source`: one or more states.
    pub source: Vec<String>,
    /// `dest`; `None` for an internal transition.
    pub dest: Option<String>,
    /// `triggers`.
    pub triggers: Vec<RawTrigger>,
    /// `stop_after_state_change`.
    pub stop_after_state_change: bool,
}

/// A configuration as written, shape-checked but not yet resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawConfig {
    /// `initial_state`, when set.
    pub initial_state: Option<String>,
    /// `transitions`.
    pub transitions: Vec<RawTransition>,
    /// `tasks`: declared tasks by name, each a one-key mapping `kind: parameters` (SPEC 3.2).
    pub tasks: BTreeMap<String, Value>,
    /// `redact`: extra words that make a property secret (SPEC 6).
    pub redact: Vec<String>,
}

const TOP_KEYS: &[&str] = &["initial_state", "transitions", "tasks", "redact"];
const TRANSITION_KEYS: &[&str] = &["source", "dest", "triggers", "stop_after_state_change"];
const TRIGGER_KEYS: &[&str] = &[
    "name",
    "prepare",
    "conditions",
    "unless",
    "before",
    "after",
    "stop_after_trigger",
    "ignore_errors",
];

/// Collects errors while walking the YAML tree.
struct Checker {
    errors: Vec<ConfigError>,
}

impl Checker {
    fn err(&mut self, kind: ConfigErrorKind, location: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            kind,
            location: location.to_owned(),
            message: message.into(),
        });
    }

    fn unknown_keys(&mut self, map: &Map<String, Value>, known: &[&str], location: &str) {
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                self.err(
                    ConfigErrorKind::UnknownKey,
                    location,
                    format!("unknown key `{k}` (expected one of: {})", known.join(", ")),
                );
            }
        }
    }

    fn bool(&mut self, map: &Map<String, Value>, key: &str, location: &str) -> bool {
        match map.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.err(
                    ConfigErrorKind::WrongType,
                    &format!("{location}, key {key}"),
                    format!("must be true or false, not {}", kind_of(other)),
                );
                false
            }
        }
    }

    /// A list of non-empty strings; a scalar is refused (`conditions: always`).
    fn names(&mut self, map: &Map<String, Value>, key: &str, location: &str) -> Vec<String> {
        let at = format!("{location}, key {key}");
        match map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::String(s) if !s.trim().is_empty() => out.push(s.clone()),
                        other => self.err(
                            ConfigErrorKind::WrongType,
                            &format!("{at}[{i}]"),
                            format!("must be a non-empty name, not {}", kind_of(other)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.err(
                    ConfigErrorKind::WrongType,
                    &at,
                    format!("must be a list, not {}", kind_of(other)),
                );
                Vec::new()
            }
        }
    }
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn state_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join("|"),
        Value::Null => "null".into(),
        _ => "?".into(),
    }
}

impl RawConfig {
    /// Parses YAML (or JSON) text.
    ///
    /// # Errors
    /// Every shape problem at once: not YAML, unknown keys, wrong types, missing keys.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigErrors> {
        let value: Value = serde_norway::from_str(text).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                kind: ConfigErrorKind::Syntax,
                location: String::new(),
                message: format!("not valid YAML: {e}"),
            }])
        })?;
        Self::from_value(&value)
    }

    /// Checks an already parsed document.
    ///
    /// # Errors
    /// Every shape problem at once.
    pub fn from_value(value: &Value) -> Result<Self, ConfigErrors> {
        let (raw, errors) = Self::check(value);
        if errors.is_empty() {
            Ok(raw)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Parses YAML and checks its shape, keeping whatever is well-formed: the partial
    /// configuration and every shape problem. Lets a caller compile the well-formed part to
    /// report the semantic problems too, all in one go.
    ///
    /// # Errors
    /// Only when the text is not YAML at all.
    pub fn check_yaml(text: &str) -> Result<(Self, Vec<ConfigError>), ConfigErrors> {
        let value: Value = serde_norway::from_str(text).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                kind: ConfigErrorKind::Syntax,
                location: String::new(),
                message: format!("not valid YAML: {e}"),
            }])
        })?;
        Ok(Self::check(&value))
    }

    /// Checks a document's shape: the well-formed part and every problem found.
    pub fn check(value: &Value) -> (Self, Vec<ConfigError>) {
        let mut c = Checker { errors: Vec::new() };
        let mut raw = RawConfig::default();
        let wrapped;
        let top = match value {
            Value::Array(_) => {
                let mut m = Map::new();
                m.insert("transitions".into(), value.clone());
                wrapped = m;
                &wrapped
            }
            Value::Object(m) => m,
            other => {
                c.err(
                    ConfigErrorKind::Syntax,
                    "",
                    format!(
                        "a configuration is a mapping with `transitions` (or a list of transitions), not {}",
                        kind_of(other)
                    ),
                );
                return (raw, c.errors);
            }
        };
        c.unknown_keys(top, TOP_KEYS, "top level");
        match top.get("initial_state") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.is_empty() => raw.initial_state = Some(s.clone()),
            Some(other) => c.err(
                ConfigErrorKind::WrongType,
                "key initial_state",
                format!("must be a state name, not {}", kind_of(other)),
            ),
        }
        raw.redact = c.names(top, "redact", "top level");
        match top.get("tasks") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                raw.tasks = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            }
            Some(other) => c.err(
                ConfigErrorKind::WrongType,
                "key tasks",
                format!(
                    "must be a mapping of task names to declarations, not {}",
                    kind_of(other)
                ),
            ),
        }
        match top.get("transitions") {
            None | Some(Value::Null) => c.err(
                ConfigErrorKind::Missing,
                "top level",
                "`transitions` is required",
            ),
            Some(Value::Array(ts)) => {
                if ts.is_empty() {
                    c.err(
                        ConfigErrorKind::Missing,
                        "key transitions",
                        "at least one transition is required",
                    );
                }
                for (i, t) in ts.iter().enumerate() {
                    if let Some(t) = parse_transition(&mut c, i, t) {
                        raw.transitions.push(t);
                    }
                }
            }
            Some(other) => c.err(
                ConfigErrorKind::WrongType,
                "key transitions",
                format!("must be a list, not {}", kind_of(other)),
            ),
        }
        (raw, c.errors)
    }

    /// Every name used where a task is expected (`prepare`, `before`, `after`) and where a
    /// condition is expected (`conditions`, `unless`), each in first-use order.
    pub fn referenced_names(&self) -> (Vec<String>, Vec<String>) {
        let mut tasks: Vec<String> = Vec::new();
        let mut conds: Vec<String> = Vec::new();
        let add = |list: &mut Vec<String>, names: &[String]| {
            for n in names {
                if !list.contains(n) {
                    list.push(n.clone());
                }
            }
        };
        for t in &self.transitions {
            for g in &t.triggers {
                add(&mut tasks, &g.prepare);
                add(&mut conds, &g.conditions);
                add(&mut conds, &g.unless);
                add(&mut tasks, &g.before);
                add(&mut tasks, &g.after);
            }
        }
        (tasks, conds)
    }
}

fn parse_transition(c: &mut Checker, i: usize, t: &Value) -> Option<RawTransition> {
    let Value::Object(m) = t else {
        c.err(
            ConfigErrorKind::WrongType,
            &format!("transitions[{i}]"),
            format!("a transition is a mapping, not {}", kind_of(t)),
        );
        return None;
    };
    let label = format!(
        "transitions[{i}] ({} -> {})",
        m.get("source").map_or_else(|| "?".into(), state_label),
        m.get("dest").map_or_else(|| "?".into(), state_label)
    );
    c.unknown_keys(m, TRANSITION_KEYS, &label);
    let mut raw = RawTransition::default();
    match m.get("source") {
        Some(Value::String(s)) if !s.is_empty() => raw.source.push(s.clone()),
        Some(Value::Array(a)) if !a.is_empty() => {
            for (j, v) in a.iter().enumerate() {
                match v {
                    Value::String(s) if !s.is_empty() => raw.source.push(s.clone()),
                    other => c.err(
                        ConfigErrorKind::WrongType,
                        &format!("{label}, key source[{j}]"),
                        format!("must be a state name, not {}", kind_of(other)),
                    ),
                }
            }
        }
        None | Some(Value::Null) => {
            c.err(ConfigErrorKind::Missing, &label, "`source` is required");
        }
        Some(other) => c.err(
            ConfigErrorKind::WrongType,
            &format!("{label}, key source"),
            format!(
                "must be a state or a non-empty list of states, not {}",
                kind_of(other)
            ),
        ),
    }
    match m.get("dest") {
        None => c.err(
            ConfigErrorKind::Missing,
            &label,
            "`dest` is required (use null for an internal transition)",
        ),
        Some(Value::Null) => {}
        Some(Value::String(s)) if !s.is_empty() => raw.dest = Some(s.clone()),
        Some(other) => c.err(
            ConfigErrorKind::WrongType,
            &format!("{label}, key dest"),
            format!("must be a state name or null, not {}", kind_of(other)),
        ),
    }
    raw.stop_after_state_change = c.bool(m, "stop_after_state_change", &label);
    match m.get("triggers") {
        Some(Value::Array(gs)) if !gs.is_empty() => {
            for (j, g) in gs.iter().enumerate() {
                if let Some(g) = parse_trigger(c, &label, j, g) {
                    raw.triggers.push(g);
                }
            }
        }
        None | Some(Value::Null) | Some(Value::Array(_)) => {
            c.err(
                ConfigErrorKind::Missing,
                &label,
                "`triggers` must list at least one trigger",
            );
        }
        Some(other) => c.err(
            ConfigErrorKind::WrongType,
            &format!("{label}, key triggers"),
            format!("must be a list, not {}", kind_of(other)),
        ),
    }
    Some(raw)
}

fn parse_trigger(c: &mut Checker, label: &str, j: usize, g: &Value) -> Option<RawTrigger> {
    let Value::Object(m) = g else {
        c.err(
            ConfigErrorKind::WrongType,
            &format!("{label}, triggers[{j}]"),
            format!("a trigger is a mapping, not {}", kind_of(g)),
        );
        return None;
    };
    let name = match m.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(Value::Null) => {
            c.err(
                ConfigErrorKind::Missing,
                &format!("{label}, triggers[{j}]"),
                "`name` is required",
            );
            String::new()
        }
        Some(other) => {
            c.err(
                ConfigErrorKind::WrongType,
                &format!("{label}, triggers[{j}], key name"),
                format!("must be a non-empty string, not {}", kind_of(other)),
            );
            String::new()
        }
    };
    let at = if name.is_empty() {
        format!("{label}, triggers[{j}]")
    } else {
        format!("{label}, trigger {name}")
    };
    c.unknown_keys(m, TRIGGER_KEYS, &at);
    Some(RawTrigger {
        prepare: c.names(m, "prepare", &at),
        conditions: c.names(m, "conditions", &at),
        unless: c.names(m, "unless", &at),
        before: c.names(m, "before", &at),
        after: c.names(m, "after", &at),
        stop_after_trigger: c.bool(m, "stop_after_trigger", &at),
        ignore_errors: c.bool(m, "ignore_errors", &at),
        name,
    })
}

/// An interned state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(pub u32);

/// An index into the definition's task table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId(pub u32);

/// An index into the definition's condition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CondId(pub u32);

/// A compiled trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Its name.
    pub name: String,
    /// `prepare` tasks.
    pub prepare: Vec<TaskId>,
    /// `conditions`.
    pub conditions: Vec<CondId>,
    /// `unless`.
    pub unless: Vec<CondId>,
    /// `before` tasks.
    pub before: Vec<TaskId>,
    /// `after` tasks.
    pub after: Vec<TaskId>,
    /// `stop_after_trigger`.
    pub stop_after_trigger: bool,
    /// `ignore_errors`.
    pub ignore_errors: bool,
}

/// A compiled transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Where it may start.
    pub sources: Vec<StateId>,
    /// Where it leads (`None`: internal).
    pub dest: Option<StateId>,
    /// Its triggers, in configuration order.
    pub triggers: Vec<Trigger>,
    /// `stop_after_state_change`.
    pub stop_after_state_change: bool,
}

/// One way out of a state: a trigger of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the transition.
    pub transition: u32,
    /// Index of the trigger within it.
    pub trigger: u32,
}

/// A compiled, immutable state machine: states interned, triggers ordered, names resolved.
pub struct Definition {
    states: Vec<String>,
    state_ids: HashMap<String, StateId>,
    initial: StateId,
    failure: StateId,
    transitions: Vec<Transition>,
    candidates: Vec<Vec<Candidate>>,
    task_names: Vec<String>,
    tasks: Vec<Arc<dyn Task>>,
    condition_names: Vec<String>,
    conditions: Vec<Arc<dyn Condition>>,
    redact: Vec<String>,
}

impl fmt::Debug for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Definition")
            .field("states", &self.states)
            .field("initial", &self.initial)
            .field("transitions", &self.transitions)
            .field("tasks", &self.task_names)
            .field("conditions", &self.condition_names)
            .finish_non_exhaustive()
    }
}

/// Names interned in first-use order, each with what it resolved to.
struct Table<T: ?Sized> {
    index: HashMap<String, u32>,
    names: Vec<String>,
    items: Vec<Arc<T>>,
}

impl<T: ?Sized> Default for Table<T> {
    fn default() -> Self {
        Table {
            index: HashMap::new(),
            names: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<T: ?Sized> Table<T> {
    fn insert(&mut self, name: &str, item: Arc<T>) -> u32 {
        let id = self.items.len() as u32;
        self.items.push(item);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }
}

struct Interner<'r> {
    registry: &'r Registry,
    tasks: Table<dyn Task>,
    conditions: Table<dyn Condition>,
    errors: Vec<ConfigError>,
}

impl Interner<'_> {
    /// Looks `name` up where a `want` (task or condition) is expected; records the error.
    fn lookup(&mut self, name: &str, at: &str, want: &str) -> Option<Registered> {
        let found = self.registry.get(name).cloned();
        let (kind, message) = match &found {
            None => (
                ConfigErrorKind::UnknownName,
                format!("unknown {want} `{name}`: nothing registers it"),
            ),
            Some(Registered::Task(_)) if want != "task" => (
                ConfigErrorKind::WrongKind,
                format!("`{name}` is a task, not a {want}"),
            ),
            Some(Registered::Condition(_)) if want != "condition" => (
                ConfigErrorKind::WrongKind,
                format!("`{name}` is a condition, not a {want}"),
            ),
            Some(_) => return found,
        };
        self.errors.push(ConfigError {
            kind,
            location: at.to_owned(),
            message,
        });
        None
    }

    fn task(&mut self, name: &str, at: &str) -> Option<TaskId> {
        if let Some(id) = self.tasks.index.get(name) {
            return Some(TaskId(*id));
        }
        match self.lookup(name, at, "task")? {
            Registered::Task(t) => Some(TaskId(self.tasks.insert(name, t))),
            Registered::Condition(_) => None,
        }
    }

    fn condition(&mut self, name: &str, at: &str) -> Option<CondId> {
        if let Some(id) = self.conditions.index.get(name) {
            return Some(CondId(*id));
        }
        match self.lookup(name, at, "condition")? {
            Registered::Condition(c) => Some(CondId(self.conditions.insert(name, c))),
            Registered::Task(_) => None,
        }
    }

    fn tasks(&mut self, names: &[String], at: &str, key: &str) -> Vec<TaskId> {
        let at = format!("{at}, key {key}");
        names.iter().filter_map(|n| self.task(n, &at)).collect()
    }

    fn conditions(&mut self, names: &[String], at: &str, key: &str) -> Vec<CondId> {
        let at = format!("{at}, key {key}");
        names
            .iter()
            .filter_map(|n| self.condition(n, &at))
            .collect()
    }
}

impl Definition {
    /// Compiles a shape-checked configuration against `registry` plus the configuration's own
    /// declared tasks.
    ///
    /// # Errors
    /// Every problem at once, each naming the transition, trigger and key: the reserved
    /// trigger name, two transitions with one destination, an `initial_state` that is not a
    /// state, a declared task that is wrong, a name nothing registers, a task used as a
    /// condition or the other way round.
    pub fn compile(raw: &RawConfig, registry: &Registry) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut registry = registry.clone();
        for (name, spec) in &raw.tasks {
            let at = format!("tasks.{name}");
            if registry.contains(name) {
                errors.push(ConfigError {
                    kind: ConfigErrorKind::DeclaredTask,
                    location: at,
                    message: format!("`{name}` is already a built-in or registered name"),
                });
                continue;
            }
            match declared::build(name, spec) {
                Ok(Registered::Task(t)) => {
                    registry.register_task(name.clone(), t);
                }
                Ok(Registered::Condition(c)) => {
                    registry.register_condition(name.clone(), c);
                }
                Err(messages) => errors.extend(messages.into_iter().map(|m| ConfigError {
                    kind: ConfigErrorKind::DeclaredTask,
                    location: at.clone(),
                    message: m,
                })),
            }
        }

        // States: sources and destinations in order of first appearance, then `failure`.
        let mut states: Vec<String> = Vec::new();
        let mut state_ids: HashMap<String, StateId> = HashMap::new();
        let mut intern = |s: &str, states: &mut Vec<String>| -> StateId {
            if let Some(id) = state_ids.get(s) {
                return *id;
            }
            let id = StateId(states.len() as u32);
            states.push(s.to_owned());
            state_ids.insert(s.to_owned(), id);
            id
        };

        let mut it = Interner {
            registry: &registry,
            tasks: Table::default(),
            conditions: Table::default(),
            errors: Vec::new(),
        };
        let mut dests: HashMap<&str, usize> = HashMap::new();
        let mut transitions = Vec::with_capacity(raw.transitions.len());
        for (i, t) in raw.transitions.iter().enumerate() {
            let label = format!(
                "transitions[{i}] ({} -> {})",
                t.source.join("|"),
                t.dest.as_deref().unwrap_or("null")
            );
            let sources: Vec<StateId> = t.source.iter().map(|s| intern(s, &mut states)).collect();
            let dest = t.dest.as_deref().map(|d| intern(d, &mut states));
            if let Some(d) = t.dest.as_deref() {
                if let Some(first) = dests.get(d) {
                    errors.push(ConfigError {
                        kind: ConfigErrorKind::DuplicateDest,
                        location: format!("{label}, key dest"),
                        message: format!(
                            "destination `{d}` is already the destination of transitions[{first}]"
                        ),
                    });
                } else {
                    dests.insert(d, i);
                }
            }
            let mut triggers = Vec::with_capacity(t.triggers.len());
            for g in &t.triggers {
                let at = format!("{label}, trigger {}", g.name);
                if g.name == RESERVED_TRIGGER {
                    errors.push(ConfigError {
                        kind: ConfigErrorKind::ReservedName,
                        location: format!("{at}, key name"),
                        message: format!("`{RESERVED_TRIGGER}` is a reserved trigger name"),
                    });
                }
                triggers.push(Trigger {
                    name: g.name.clone(),
                    prepare: it.tasks(&g.prepare, &at, "prepare"),
                    conditions: it.conditions(&g.conditions, &at, "conditions"),
                    unless: it.conditions(&g.unless, &at, "unless"),
                    before: it.tasks(&g.before, &at, "before"),
                    after: it.tasks(&g.after, &at, "after"),
                    stop_after_trigger: g.stop_after_trigger,
                    ignore_errors: g.ignore_errors,
                });
            }
            transitions.push(Transition {
                sources,
                dest,
                triggers,
                stop_after_state_change: t.stop_after_state_change,
            });
        }
        let failure = intern(FAILURE_STATE, &mut states);
        errors.append(&mut it.errors);

        let initial = match &raw.initial_state {
            Some(s) => match state_ids.get(s) {
                Some(id) => *id,
                None => {
                    errors.push(ConfigError {
                        kind: ConfigErrorKind::UnknownState,
                        location: "key initial_state".into(),
                        message: format!("`{s}` is not a source or destination of any transition"),
                    });
                    StateId(0)
                }
            },
            None => transitions
                .first()
                .and_then(|t| t.sources.first().copied())
                .unwrap_or(StateId(0)),
        };

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }

        // Trigger names in order of first appearance anywhere: a global order, never a hash's.
        let mut name_order: HashMap<&str, usize> = HashMap::new();
        for t in &transitions {
            for g in &t.triggers {
                let next = name_order.len();
                name_order.entry(g.name.as_str()).or_insert(next);
            }
        }
        let mut candidates: Vec<Vec<Candidate>> = vec![Vec::new(); states.len()];
        for (ti, t) in transitions.iter().enumerate() {
            for (gi, _) in t.triggers.iter().enumerate() {
                for s in &t.sources {
                    let list = &mut candidates[s.0 as usize];
                    let c = Candidate {
                        transition: ti as u32,
                        trigger: gi as u32,
                    };
                    if !list.contains(&c) {
                        list.push(c);
                    }
                }
            }
        }
        for list in &mut candidates {
            list.sort_by_key(|c| {
                let g = &transitions[c.transition as usize].triggers[c.trigger as usize];
                (
                    name_order
                        .get(g.name.as_str())
                        .copied()
                        .unwrap_or(usize::MAX),
                    c.transition,
                    c.trigger,
                )
            });
        }

        Ok(Definition {
            states,
            state_ids,
            initial,
            failure,
            transitions,
            candidates,
            task_names: it.tasks.names,
            tasks: it.tasks.items,
            condition_names: it.conditions.names,
            conditions: it.conditions.items,
            redact: raw.redact.clone(),
        })
    }

    /// Parses and compiles YAML text in one go.
    ///
    /// # Errors
    /// Every shape problem ([`RawConfig::check`]) and every problem compiling the well-formed
    /// part ([`Definition::compile`]), together.
    pub fn from_yaml(text: &str, registry: &Registry) -> Result<Self, ConfigErrors> {
        let (raw, mut errors) = RawConfig::check_yaml(text)?;
        match Self::compile(&raw, registry) {
            Ok(def) if errors.is_empty() => Ok(def),
            Ok(_) => Err(ConfigErrors(errors)),
            Err(ConfigErrors(more)) => {
                errors.extend(more);
                Err(ConfigErrors(errors))
            }
        }
    }

    /// Every state, in order of first appearance, `failure` included.
    pub fn states(&self) -> &[String] {
        &self.states
    }

    /// The name of a state.
    pub fn state_name(&self, id: StateId) -> &str {
        self.states.get(id.0 as usize).map_or("?", String::as_str)
    }

    /// Looks a state up by name.
    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.state_ids.get(name).copied()
    }

    /// The initial state's name.
    pub fn initial_state(&self) -> &str {
        self.state_name(self.initial)
    }

    /// The initial state.
    pub fn initial(&self) -> StateId {
        self.initial
    }

    /// The `failure` state.
    pub fn failure(&self) -> StateId {
        self.failure
    }

    /// The transitions, in configuration order.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// The ways out of `state`, in trigger order (SPEC 4.2).
    pub fn candidates(&self, state: StateId) -> &[Candidate] {
        self.candidates
            .get(state.0 as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The transition and trigger a candidate names.
    pub fn resolve(&self, c: Candidate) -> (&Transition, &Trigger) {
        let t = &self.transitions[c.transition as usize];
        (t, &t.triggers[c.trigger as usize])
    }

    /// A task's name.
    pub fn task_name(&self, id: TaskId) -> &str {
        &self.task_names[id.0 as usize]
    }

    /// A task.
    pub fn task(&self, id: TaskId) -> &Arc<dyn Task> {
        &self.tasks[id.0 as usize]
    }

    /// A condition's name.
    pub fn condition_name(&self, id: CondId) -> &str {
        &self.condition_names[id.0 as usize]
    }

    /// A condition.
    pub fn condition(&self, id: CondId) -> &Arc<dyn Condition> {
        &self.conditions[id.0 as usize]
    }

    /// Extra secret words from the configuration's `redact:` key.
    pub fn redact_words(&self) -> &[String] {
        &self.redact
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        match Definition::from_yaml(yaml, &Registry::builtin()) {
            Ok(_) => Vec::new(),
            Err(ConfigErrors(es)) => es.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn bare_list_is_shorthand_and_initial_is_first_source() {
        let d = Definition::from_yaml(
            "- {source: a, dest: b, triggers: [{name: go}]}\n- {source: b, dest: c, triggers: [{name: go2}]}\n",
            &Registry::builtin(),
        )
        .unwrap();
        assert_eq!(d.initial_state(), "a");
        assert_eq!(d.states(), ["a", "b", "c", "failure"]);
    }

    #[test]
    fn every_error_is_reported_at_once_with_its_location() {
        let es = errors(
            r#"
initial_state: nowhere
colour: blue
transitions:
  - source: a
    dest: b
    triggers:
      - name: trigger
        conditions: always
        after: [no_such_task]
        wat: 1
  - source: [c]
    dest: b
    triggers: [{name: x, stop_after_trigger: "yes"}]
"#,
        );
        let joined = es.join("\n");
        for needle in [
            "top level: unknown key `colour`",
            "transitions[0] (a -> b), trigger trigger, key conditions: must be a list, not the string \"always\"",
            "transitions[0] (a -> b), trigger trigger: unknown key `wat`",
            "transitions[1] (c -> b), trigger x, key stop_after_trigger: must be true or false",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
        }
        // Semantic errors are reported alongside shape errors.
        assert!(
            joined.contains("key name: `trigger` is a reserved trigger name"),
            "{joined}"
        );
        assert!(
            joined.contains("key initial_state: `nowhere` is not a source"),
            "{joined}"
        );
        let es = errors(
            r#"
initial_state: nowhere
transitions:
  - {source: a, dest: b, triggers: [{name: trigger, after: [no_such_task], conditions: [remove_from_db]}]}
  - {source: [c], dest: b, triggers: [{name: x, before: [is_launching]}]}
"#,
        )
        .join("\n");
        for needle in [
            "transitions[0] (a -> b), trigger trigger, key name: `trigger` is a reserved trigger name",
            "transitions[0] (a -> b), trigger trigger, key after: unknown task `no_such_task`",
            "transitions[0] (a -> b), trigger trigger, key conditions: `remove_from_db` is a task, not a condition",
            "transitions[1] (c -> b), key dest: destination `b` is already the destination of transitions[0]",
            "transitions[1] (c -> b), trigger x, key before: `is_launching` is a condition, not a task",
            "key initial_state: `nowhere` is not a source or destination",
        ] {
            assert!(es.contains(needle), "missing {needle:?} in:\n{es}");
        }
    }

    #[test]
    fn trigger_order_is_first_appearance_across_transitions() {
        let d = Definition::from_yaml(
            r#"
- {source: x, dest: y, triggers: [{name: second}]}
- {source: a, dest: b, triggers: [{name: first}, {name: second}]}
- {source: a, dest: c, triggers: [{name: first}]}
"#,
            &Registry::builtin(),
        )
        .unwrap();
        let a = d.state_id("a").unwrap();
        let names: Vec<(&str, u32)> = d
            .candidates(a)
            .iter()
            .map(|c| (d.resolve(*c).1.name.as_str(), c.transition))
            .collect();
        // `second` appeared first (in transitions[0]), so it is tried first.
        assert_eq!(names, [("second", 1), ("first", 1), ("first", 2)]);
    }

    #[test]
    fn not_yaml_and_not_a_mapping_are_errors() {
        assert!(errors("transitions: [").join("").contains("not valid YAML"));
        assert!(errors("42").join("").contains("not the number 42"));
        assert!(errors("{}").join("").contains("`transitions` is required"));
    }
}
