//! Tasks and conditions declared in the configuration's `tasks:` section (SPEC 3.2), so that an
//! operator can run the whole lifecycle from YAML alone.
//!
//! Each declaration is a one-key mapping `KIND: PARAMETERS`, checked when the configuration
//! compiles (unknown parameters, placeholders that name nothing) and kept here as plain data;
//! the runtime performs it. One kind per file:
//!
//! | kind | a | parameters |
//! |---|---|---|
//! | `ssm_command` | task | `commands` (list or string), `comment`, `target` (`node` or an alias), `nodes` (aliases), `wait_online_seconds`, `execution_timeout_seconds` |
//! | `route53` | task | `zone_id`, `ttl`, `upsert`/`delete` (lists of `{name, type, value(s), ttl}`), `defer`, `nodes` |
//! | `sns_report` | task | `topic_arn`, `subject`, `message` |
//! | `set_properties` | task | `properties` (mapping of name → template), `nodes` |
//! | `ec2_snapshot` | task | `volume_id` or `device`, `description`, `tags`, `wait_seconds`, `property` |
//! | `read_parameter` | task | `name` (an SSM parameter), `property`, `decrypt` (default true) |
//! | `node_property` | condition | `property`, one of `equals` / `one_of` / `present`, `node` (alias), `nodes` |
//! | `node_count` | condition | `item_type`, `status`, `min`, `max`, `exclude_self` |
//!
//! `nodes` declares aliases for placeholders: `nodes: {manager: {item_type: manager}}` makes
//! `{manager.InstanceIp}` the property of the first node of type `manager` (by `Ident`),
//! excluding nodes that are `terminating` or `removing`, and the event's own node.

mod ec2_snapshot;
mod node_count;
mod node_property;
mod read_parameter;
mod route53;
mod set_properties;
mod sns_report;
mod ssm_command;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use ec2_snapshot::{Ec2Snapshot, Volume};
pub use node_count::NodeCount;
pub use node_property::{NodeProperty, PropertyTest};
pub use read_parameter::ReadParameter;
pub use route53::{RecordAction, RecordTemplate, Route53};
pub use set_properties::SetProperties;
pub use sns_report::SnsReport;
pub use ssm_command::{EXECUTION_TIMEOUT_MAX, SSM_COMMENT_MAX, SsmCommand};

use super::template::Template;
use crate::node::Node;

/// Node statuses that query results leave out (SPEC 5).
pub const LEAVING_STATUSES: &[&str] = &["terminating", "removing"];

/// A declared task, checked and ready to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclaredTask {
    /// `ssm_command`.
    SsmCommand(SsmCommand),
    /// `route53`.
    Route53(Route53),
    /// `sns_report`.
    SnsReport(SnsReport),
    /// `set_properties`.
    SetProperties(SetProperties),
    /// `read_parameter`.
    ReadParameter(ReadParameter),
    /// `ec2_snapshot`.
    Ec2Snapshot(Ec2Snapshot),
}

impl DeclaredTask {
    /// True when a second run does no harm: an `ssm_command` is sent at most once per
    /// transition and node whatever runs it (its send guard), `route53` changes are UPSERTs
    /// and tolerant DELETEs, `set_properties` writes the same values, `read_parameter` reads.
    /// An `sns_report` would send its message twice and an `ec2_snapshot` take a second
    /// snapshot: the state is written before them.
    pub fn repeatable(&self) -> bool {
        match self {
            DeclaredTask::SsmCommand(_)
            | DeclaredTask::Route53(_)
            | DeclaredTask::SetProperties(_)
            | DeclaredTask::ReadParameter(_) => true,
            DeclaredTask::SnsReport(_) | DeclaredTask::Ec2Snapshot(_) => false,
        }
    }
}

/// A declared condition, checked and ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclaredCondition {
    /// `node_property`.
    NodeProperty(NodeProperty),
    /// `node_count`.
    NodeCount(NodeCount),
}

/// A declaration: a task or a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Declared {
    Task(DeclaredTask),
    Condition(DeclaredCondition),
}

/// A declaration as written: `{kind: parameters}`, the kind being the one key.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Raw {
    SsmCommand(ssm_command::Params),
    Route53(route53::Params),
    SnsReport(sns_report::Params),
    SetProperties(set_properties::Params),
    ReadParameter(read_parameter::Params),
    Ec2Snapshot(ec2_snapshot::Params),
    NodeProperty(node_property::Params),
    NodeCount(node_count::Params),
}

/// Checks a declaration `{kind: parameters}` of the task `name`.
///
/// # Errors
/// Every problem with the declaration, each a message naming the parameter.
pub(crate) fn build(name: &str, spec: &Value) -> Result<Declared, Vec<String>> {
    let Value::Object(m) = spec else {
        return Err(vec![format!(
            "a declared task is a mapping with one key, its kind; not {spec}"
        )]);
    };
    let Some((kind, params)) = m.iter().next().filter(|_| m.len() == 1) else {
        return Err(vec![format!(
            "a declared task is a mapping with one key, its kind; found {} keys",
            m.len()
        )]);
    };
    // `kind:` with no parameters means all defaults.
    let params = if params.is_null() {
        Value::Object(Map::new())
    } else {
        params.clone()
    };
    let mut one = Map::new();
    one.insert(kind.clone(), params);
    let raw: Raw =
        serde_json::from_value(Value::Object(one)).map_err(|e| vec![format!("{kind}: {e}")])?;
    let at = |errors: Vec<String>| -> Vec<String> {
        errors.into_iter().map(|e| format!("{kind}: {e}")).collect()
    };
    Ok(match raw {
        Raw::SsmCommand(p) => Declared::Task(DeclaredTask::SsmCommand(
            SsmCommand::new(name, p).map_err(at)?,
        )),
        Raw::Route53(p) => Declared::Task(DeclaredTask::Route53(Route53::new(p).map_err(at)?)),
        Raw::SnsReport(p) => {
            Declared::Task(DeclaredTask::SnsReport(SnsReport::new(p).map_err(at)?))
        }
        Raw::SetProperties(p) => Declared::Task(DeclaredTask::SetProperties(
            SetProperties::new(p).map_err(at)?,
        )),
        Raw::ReadParameter(p) => Declared::Task(DeclaredTask::ReadParameter(
            ReadParameter::new(p).map_err(at)?,
        )),
        Raw::Ec2Snapshot(p) => {
            Declared::Task(DeclaredTask::Ec2Snapshot(Ec2Snapshot::new(p).map_err(at)?))
        }
        Raw::NodeProperty(p) => Declared::Condition(DeclaredCondition::NodeProperty(
            NodeProperty::new(p).map_err(at)?,
        )),
        Raw::NodeCount(p) => {
            Declared::Condition(DeclaredCondition::NodeCount(NodeCount::new(p).map_err(at)?))
        }
    })
}

/// One or several strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Vec<String> {
    fn from(v: OneOrMany) -> Self {
        match v {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One string or a list of them, read as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    OneOrMany::deserialize(d).map(Vec::from)
}

/// Like [`one_or_many`], for an optional field.
fn opt_one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    Option::<OneOrMany>::deserialize(d).map(|v| v.map(Vec::from))
}

/// A node query: `{item_type: manager, status: ready}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Query {
    /// The `ItemType` wanted.
    pub item_type: String,
    /// The statuses wanted (`None`: any status that is not leaving).
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub status: Option<Vec<String>>,
    /// Leave the event's own node out (default true for aliases).
    #[serde(default = "yes")]
    pub exclude_self: bool,
}

impl Query {
    /// True when `node` answers this query for an event whose own node is `own`.
    pub fn matches(&self, node: &Node, own: Option<&str>) -> bool {
        let leaving = LEAVING_STATUSES.contains(&node.status.as_str());
        let is_self = self.exclude_self && Some(node.id.as_str()) == own;
        let wanted = self
            .status
            .as_ref()
            .is_none_or(|w| w.contains(&node.status));
        !leaving && !is_self && wanted
    }
}

fn yes() -> bool {
    true
}

/// Node aliases: name → query, resolved when the task runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Aliases(BTreeMap<String, Query>);

impl Aliases {
    fn new(map: BTreeMap<String, Query>) -> Result<Self, Vec<String>> {
        let bad: Vec<String> = map
            .keys()
            .filter(|k| ["node", "event", "metadata", "lifecycle"].contains(&k.as_str()))
            .map(|k| format!("nodes: alias `{k}` is reserved"))
            .collect();
        if bad.is_empty() {
            Ok(Aliases(map))
        } else {
            Err(bad)
        }
    }

    fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// True when `name` is an alias.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Every alias with its query, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Query)> {
        self.0.iter().map(|(k, q)| (k.as_str(), q))
    }
}

fn templates(texts: &[String], aliases: &[&str], what: &str) -> Result<Vec<Template>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for t in texts {
        match Template::parse(t, aliases) {
            Ok(t) => out.push(t),
            Err(e) => errors.push(format!("{what}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn template(text: &str, aliases: &[&str], what: &str) -> Result<Template, Vec<String>> {
    Template::parse(text, aliases).map_err(|e| vec![format!("{what}: {e}")])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(yaml: &str) -> String {
        let v: Value = serde_norway::from_str(yaml).unwrap();
        match build("t", &v) {
            Ok(_) => String::new(),
            Err(e) => e.join("\n"),
        }
    }

    #[test]
    fn declarations_are_checked_at_load() {
        assert_eq!(
            errs("ssm_command: {commands: ['echo {node.InstanceIp}']}"),
            ""
        );
        assert!(
            errs("ssm_command: {commands: ['x'], colour: 1}").contains("unknown field `colour`")
        );
        assert!(
            errs("ssm_command: {commands: ['{manager.InstanceIp}']}")
                .contains("`manager` is not node")
        );
        assert_eq!(
            errs(
                "ssm_command: {commands: ['{manager.InstanceIp}'], nodes: {manager: {item_type: manager}}}"
            ),
            ""
        );
        assert!(errs("ssm_command: {commands: [x], target: boss}").contains("target `boss`"));
        assert!(
            errs("ssm_command: {commands: [x], execution_timeout_seconds: 0}")
                .contains("execution_timeout_seconds must be between 1 and 172800, not 0")
        );
        assert!(errs("route53: {zone_id: Z1}").contains("at least one record"));
        assert!(
            errs("route53: {zone_id: Z1, upsert: [{name: a}]}").contains("`value` or `values`")
        );
        assert!(errs("node_property: {property: a}").contains("exactly one of"));
        assert!(errs("node_count: {item_type: a}").contains("`min`, `max`"));
        assert!(errs("teleport: {}").contains("unknown variant `teleport`"));
        assert!(errs("teleport: {}").contains("`ssm_command`"));
        assert_eq!(
            errs("ec2_snapshot: {device: /dev/xvdf, tags: {Name: '{node.Ident}'}}"),
            ""
        );
        assert!(errs("ec2_snapshot: {}").contains("exactly one of `volume_id`, `device`"));
        assert!(errs("ec2_snapshot: {device: x, tags: {a: '{x.y}'}}").contains("tags.a"));
        assert!(errs("[1]").contains("a mapping with one key"));
        assert!(errs("{a: 1, b: 2}").contains("found 2 keys"));
        assert!(errs("set_properties: {properties: {ItemStatus: x}}").contains("cannot be set"));
        assert_eq!(
            errs("read_parameter: {name: /swarm/token, property: JoinToken}"),
            ""
        );
        // A decrypted value may land under any name: the node records it as secret-derived.
        assert_eq!(
            errs("read_parameter: {name: /swarm/token, property: Join}"),
            ""
        );
        assert_eq!(
            errs("read_parameter: {name: /swarm/ip, property: ManagerIp, decrypt: false}"),
            ""
        );
    }

    #[test]
    fn status_takes_one_state_or_a_list() {
        let q: Query =
            serde_json::from_value(serde_json::json!({"item_type": "m", "status": "ready"}))
                .unwrap();
        assert_eq!(q.status, Some(vec!["ready".to_owned()]));
        let q: Query =
            serde_json::from_value(serde_json::json!({"item_type": "m", "status": ["a", "b"]}))
                .unwrap();
        assert_eq!(q.status, Some(vec!["a".to_owned(), "b".to_owned()]));
    }
}
