//! Step 1: YAML in, [`RawConfig`] out — the shape checked (known keys, types, required
//! fields), every problem reported at once.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::{ConfigError, ConfigErrorKind, ConfigErrors};

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
    /// `report`: this trigger's own SNS report, as written (checked when compiled).
    pub report: Option<Value>,
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
    /// `report`: the built-in SNS reporting, as written (checked when compiled).
    pub report: Option<Value>,
    /// `reconcile`: the reconciliation sweep's settings, as written (checked when compiled).
    pub reconcile: Option<Value>,
}

const TOP_KEYS: &[&str] = &[
    "initial_state",
    "transitions",
    "tasks",
    "redact",
    "report",
    "reconcile",
];
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
    "report",
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
        raw.report = top.get("report").filter(|v| !v.is_null()).cloned();
        raw.reconcile = top.get("reconcile").filter(|v| !v.is_null()).cloned();
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
        report: m.get("report").filter(|v| !v.is_null()).cloned(),
        name,
    })
}
