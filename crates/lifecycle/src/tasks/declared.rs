//! Tasks and conditions declared in the configuration's `tasks:` section (SPEC 3.2), so that an
//! operator can run the whole lifecycle from YAML alone.
//!
//! Each declaration is a one-key mapping `KIND: PARAMETERS`:
//!
//! | kind | a | parameters |
//! |---|---|---|
//! | `ssm_command` | task | `commands` (list or string), `comment`, `target` (`node` or an alias), `nodes` (aliases), `wait_online_seconds` |
//! | `route53` | task | `zone_id`, `ttl`, `upsert`/`delete` (lists of `{name, type, value(s), ttl}`), `defer` |
//! | `sns_report` | task | `topic_arn`, `subject`, `message` |
//! | `set_properties` | task | `properties` (mapping of name → template), `nodes` |
//! | `ec2_snapshot` | task | `volume_id` or `device`, `description`, `tags`, `wait_seconds`, `property` |
//! | `read_parameter` | task | `name` (an SSM parameter), `property`, `decrypt` (default true) |
//! | `node_property` | condition | `property`, one of `equals` / `one_of` / `present`, `node` (alias) , `nodes` |
//! | `node_count` | condition | `item_type`, `status`, `min`, `max` |
//!
//! `nodes` declares aliases for placeholders: `nodes: {manager: {item_type: manager}}` makes
//! `{manager.InstanceIp}` the property of the first node of type `manager` (by `Ident`),
//! excluding nodes that are `terminating` or `removing`, and the event's own node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::template::{Template, Values};
use super::{Condition, Registered, Task, TaskContext, TaskError};
use crate::redact::Sensitive;
use crate::services::{
    COMMAND_MARKER, RecordAction, RecordChange, ShellCommand, SnapshotRequest, VolumeRef,
};
use crate::store::{CommandRecord, Node};

/// Node statuses that query results leave out (SPEC 5).
pub const LEAVING_STATUSES: &[&str] = &["terminating", "removing"];

/// The declared kinds and whether each is a task (`true`) or a condition.
pub const KINDS: &[(&str, bool)] = &[
    ("ssm_command", true),
    ("route53", true),
    ("sns_report", true),
    ("set_properties", true),
    ("read_parameter", true),
    ("ec2_snapshot", true),
    ("node_property", false),
    ("node_count", false),
];

/// Builds a declared task or condition from its declaration `{kind: parameters}`.
///
/// # Errors
/// Every problem with the declaration, as messages naming the parameter.
pub fn build(name: &str, spec: &Value) -> Result<Registered, Vec<String>> {
    let Value::Object(m) = spec else {
        return Err(vec![format!(
            "a declared task is a mapping with one kind ({}), not {spec}",
            kind_list()
        )]);
    };
    if m.len() != 1 {
        return Err(vec![format!(
            "a declared task has exactly one kind ({}); found {} keys",
            kind_list(),
            m.len()
        )]);
    }
    let Some((kind, params)) = m.iter().next() else {
        return Err(vec!["empty declaration".into()]);
    };
    let params = if params.is_null() {
        Value::Object(Map::new())
    } else {
        params.clone()
    };
    let parsed = |e: serde_json::Error| vec![format!("{kind}: {e}")];
    match kind.as_str() {
        "ssm_command" => {
            let p: SsmParams = serde_json::from_value(params).map_err(parsed)?;
            Ok(Registered::Task(Arc::new(SsmCommand::new(name, p)?)))
        }
        "route53" => {
            let p: Route53Params = serde_json::from_value(params).map_err(parsed)?;
            Ok(Registered::Task(Arc::new(Route53::new(p)?)))
        }
        "sns_report" => {
            let p: ReportParams = serde_json::from_value(params).map_err(parsed)?;
            Ok(Registered::Task(Arc::new(SnsReport::new(p)?)))
        }
        "set_properties" => {
            let p: SetParams = serde_json::from_value(params).map_err(parsed)?;
            Ok(Registered::Task(Arc::new(SetProperties::new(p)?)))
        }
        "read_parameter" => {
            let p: ParameterParams = serde_json::from_value(params).map_err(parsed)?;
            Ok(Registered::Task(Arc::new(ReadParameter::new(p)?)))
        }
        "ec2_snapshot" => {
            let p: SnapshotParams = serde_json::from_value(params).map_err(parsed)?;
            Ok(Registered::Task(Arc::new(Ec2Snapshot::new(p)?)))
        }
        "node_property" => {
            let p: PropertyParams = serde_json::from_value(params).map_err(parsed)?;
            Ok(Registered::Condition(Arc::new(NodeProperty::new(p)?)))
        }
        "node_count" => {
            let p: CountParams = serde_json::from_value(params).map_err(parsed)?;
            Ok(Registered::Condition(Arc::new(NodeCount::new(p)?)))
        }
        other => Err(vec![format!(
            "unknown kind `{other}` (expected one of: {})",
            kind_list()
        )]),
    }
}

fn kind_list() -> String {
    KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

/// One or several strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A node query: `{item_type: manager, status: ready}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    item_type: String,
    #[serde(default)]
    status: Option<OneOrMany>,
    #[serde(default = "yes")]
    exclude_self: bool,
}

fn yes() -> bool {
    true
}

/// Node aliases resolved at run time.
#[derive(Debug, Clone, Default)]
struct Aliases(BTreeMap<String, Query>);

impl Aliases {
    fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    fn check(&self) -> Result<(), Vec<String>> {
        let bad: Vec<String> = self
            .0
            .keys()
            .filter(|k| ["node", "event", "metadata", "lifecycle"].contains(&k.as_str()))
            .map(|k| format!("nodes: alias `{k}` is reserved"))
            .collect();
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }

    async fn resolve(&self, cx: &TaskContext<'_>) -> Result<BTreeMap<String, Node>, TaskError> {
        let mut out = BTreeMap::new();
        for (alias, q) in &self.0 {
            let nodes = matching(cx, q).await?;
            let node = nodes.into_iter().next().ok_or_else(|| {
                TaskError::failed(format!(
                    "{}: no node of type {} for alias {alias}",
                    cx.name, q.item_type
                ))
            })?;
            out.insert(alias.clone(), node);
        }
        Ok(out)
    }
}

async fn matching(cx: &TaskContext<'_>, q: &Query) -> Result<Vec<Node>, TaskError> {
    let own = cx.resource.node.as_ref().map(|n| n.id.as_str());
    let wanted = q.status.clone().map(OneOrMany::into_vec);
    Ok(cx
        .services
        .nodes
        .by_type(&q.item_type)
        .await?
        .into_iter()
        .filter(|n| !LEAVING_STATUSES.contains(&n.status.as_str()))
        .filter(|n| !(q.exclude_self && Some(n.id.as_str()) == own))
        .filter(|n| wanted.as_ref().is_none_or(|w| w.contains(&n.status)))
        .collect())
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

fn values<'a>(cx: &'a TaskContext<'_>, aliases: &'a BTreeMap<String, Node>) -> Values<'a> {
    Values {
        event: cx.event,
        node: cx.resource.node.as_ref(),
        aliases,
        redactor: &cx.services.redactor,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SsmParams {
    commands: OneOrMany,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    nodes: BTreeMap<String, Query>,
    #[serde(default = "default_online_wait")]
    wait_online_seconds: u64,
}

fn default_online_wait() -> u64 {
    120
}

/// SSM's limit on a command's comment.
pub const SSM_COMMENT_MAX: usize = 100;

/// `ssm_command`: sends a shell command through SSM to the node (or a queried node), after
/// waiting for its agent, and stores the command record that the status event resumes from.
struct SsmCommand {
    commands: Vec<Template>,
    comment: Template,
    target: Option<String>,
    aliases: Aliases,
    wait_online: Duration,
}

impl SsmCommand {
    fn new(name: &str, p: SsmParams) -> Result<Self, Vec<String>> {
        let aliases = Aliases(p.nodes);
        aliases.check()?;
        let names = aliases.names();
        let commands = p.commands.into_vec();
        if commands.is_empty() {
            return Err(vec!["ssm_command: `commands` is empty".into()]);
        }
        let mut errors = Vec::new();
        if let Some(t) = &p.target
            && t != "node"
            && !names.contains(&t.as_str())
        {
            errors.push(format!(
                "ssm_command: target `{t}` is neither `node` nor an alias in `nodes`"
            ));
        }
        let commands = templates(&commands, &names, "ssm_command: commands");
        let default_comment = format!("{{event.name}} -> {name}");
        let comment = template(
            p.comment.as_deref().unwrap_or(&default_comment),
            &names,
            "ssm_command: comment",
        );
        match (commands, comment) {
            (Ok(commands), Ok(comment)) if errors.is_empty() => Ok(SsmCommand {
                commands,
                comment,
                target: p.target.filter(|t| t != "node"),
                aliases,
                wait_online: Duration::from_secs(p.wait_online_seconds),
            }),
            (commands, comment) => {
                errors.extend(commands.err().unwrap_or_default());
                errors.extend(comment.err().unwrap_or_default());
                Err(errors)
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    s.chars().take(max.saturating_sub(1)).chain(['…']).collect()
}

#[async_trait]
impl Task for SsmCommand {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let aliases = self.aliases.resolve(cx).await?;
        let target = match &self.target {
            Some(alias) => aliases
                .get(alias)
                .map(|n| n.id.clone())
                .ok_or_else(|| TaskError::failed(format!("{}: no node for {alias}", cx.name)))?,
            None => cx.node()?.id.clone(),
        };
        let v = values(cx, &aliases);
        let mut commands = vec![Sensitive::plain(COMMAND_MARKER)];
        for t in &self.commands {
            commands.push(t.render(&v)?);
        }
        let comment = truncate(self.comment.render(&v)?.shown(), SSM_COMMENT_MAX);
        let key = format!(
            "{}/{}/{}/{}",
            cx.event.id.as_deref().unwrap_or(&cx.event.name),
            cx.name,
            target,
            cx.resource.node.as_ref().map_or("", |n| n.status.as_str())
        );
        let instance_ids = vec![target];
        let until = cx
            .deadline
            .min_with(cx.services.clock.now(), self.wait_online);
        cx.services.runner.wait_online(&instance_ids, until).await?;
        let command = ShellCommand {
            instance_ids: instance_ids.clone(),
            commands,
            comment: comment.clone(),
            idempotency_key: key,
        };
        let id = cx.services.runner.send(&command).await?;
        let record = CommandRecord {
            id: id.clone(),
            running_on: instance_ids,
            comment,
            commands: command
                .commands
                .iter()
                .map(|c| c.shown().to_owned())
                .collect(),
            event_name: cx.event.name.clone(),
            lifecycle: cx.event.lifecycle.clone(),
        };
        cx.services.commands.put_command(&record).await?;
        tracing::info!(command = %id, task = %cx.name, "command sent and registered");
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordParams {
    name: String,
    #[serde(rename = "type", default = "default_type")]
    record_type: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    ttl: Option<i64>,
}

fn default_type() -> String {
    "A".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route53Params {
    zone_id: String,
    #[serde(default = "default_ttl")]
    ttl: i64,
    #[serde(default)]
    upsert: Vec<RecordParams>,
    #[serde(default)]
    delete: Vec<RecordParams>,
    #[serde(default)]
    defer: bool,
    #[serde(default)]
    nodes: BTreeMap<String, Query>,
}

fn default_ttl() -> i64 {
    60
}

struct RecordTemplate {
    action: RecordAction,
    name: Template,
    record_type: String,
    values: Vec<Template>,
    ttl: i64,
}

/// `route53`: UPSERT and DELETE record changes, applied as one change batch (or collected
/// with `defer: true` for `apply_dns_changes`).
struct Route53 {
    zone_id: Template,
    records: Vec<RecordTemplate>,
    defer: bool,
    aliases: Aliases,
}

impl Route53 {
    fn new(p: Route53Params) -> Result<Self, Vec<String>> {
        let aliases = Aliases(p.nodes);
        aliases.check()?;
        let names = aliases.names();
        let mut errors = Vec::new();
        if p.upsert.is_empty() && p.delete.is_empty() {
            errors.push("route53: give at least one record in `upsert` or `delete`".into());
        }
        let zone_id = template(&p.zone_id, &names, "route53: zone_id");
        let mut records = Vec::new();
        for (action, list, key) in [
            (RecordAction::Upsert, p.upsert, "upsert"),
            (RecordAction::Delete, p.delete, "delete"),
        ] {
            for (i, r) in list.into_iter().enumerate() {
                let what = format!("route53: {key}[{i}]");
                let mut vals = r.values;
                vals.extend(r.value);
                if vals.is_empty() {
                    errors.push(format!("{what}: `value` or `values` is required"));
                }
                let name = template(&r.name, &names, &format!("{what}.name"));
                let values = templates(&vals, &names, &format!("{what}.values"));
                match (name, values) {
                    (Ok(name), Ok(values)) => records.push(RecordTemplate {
                        action,
                        name,
                        record_type: r.record_type,
                        values,
                        ttl: r.ttl.unwrap_or(p.ttl),
                    }),
                    (a, b) => {
                        errors.extend(a.err().unwrap_or_default());
                        errors.extend(b.err().unwrap_or_default());
                    }
                }
            }
        }
        match zone_id {
            Ok(zone_id) if errors.is_empty() => Ok(Route53 {
                zone_id,
                records,
                defer: p.defer,
                aliases,
            }),
            Ok(_) => Err(errors),
            Err(e) => {
                errors.extend(e);
                Err(errors)
            }
        }
    }
}

#[async_trait]
impl Task for Route53 {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let aliases = self.aliases.resolve(cx).await?;
        let v = values(cx, &aliases);
        let zone = self.zone_id.render(&v)?.expose().to_owned();
        let mut changes = Vec::with_capacity(self.records.len());
        for r in &self.records {
            changes.push(RecordChange {
                action: r.action,
                name: r.name.render(&v)?.expose().to_owned(),
                record_type: r.record_type.clone(),
                ttl: r.ttl,
                values: r
                    .values
                    .iter()
                    .map(|t| t.render(&v).map(|s| s.expose().to_owned()))
                    .collect::<Result<_, _>>()?,
            });
        }
        if self.defer {
            cx.scratch.dns.entry(zone).or_default().extend(changes);
            Ok(())
        } else {
            cx.services.dns.change(&zone, &changes).await
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    topic_arn: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// `sns_report`: publishes a report of the event (node properties redacted) to a topic.
struct SnsReport {
    topic_arn: Template,
    subject: Template,
    message: Option<Template>,
}

impl SnsReport {
    fn new(p: ReportParams) -> Result<Self, Vec<String>> {
        let topic_arn = template(&p.topic_arn, &[], "sns_report: topic_arn")?;
        let subject = template(
            p.subject.as_deref().unwrap_or("{event.name}"),
            &[],
            "sns_report: subject",
        )?;
        let message = p
            .message
            .as_deref()
            .map(|m| template(m, &[], "sns_report: message"))
            .transpose()?;
        Ok(SnsReport {
            topic_arn,
            subject,
            message,
        })
    }
}

#[async_trait]
impl Task for SnsReport {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let none = BTreeMap::new();
        let v = values(cx, &none);
        let topic = self.topic_arn.render(&v)?.expose().to_owned();
        // SNS subjects: at most 100 characters.
        let subject = truncate(self.subject.render(&v)?.shown(), 100);
        let message = match &self.message {
            Some(t) => t.render(&v)?.shown().to_owned(),
            None => {
                let node = cx.resource.node.as_ref().map(|n| {
                    json!({
                        "Ident": n.id,
                        "ItemStatus": n.status,
                        "properties": cx.services.redactor.redact_map(&n.properties),
                    })
                });
                json!({
                    "event": cx.event.name,
                    "event_id": cx.event.id,
                    "failed": cx.event_failed,
                    "node": node,
                })
                .to_string()
            }
        };
        cx.services
            .reporter
            .publish(&topic, &subject, &message)
            .await
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetParams {
    properties: BTreeMap<String, String>,
    #[serde(default)]
    nodes: BTreeMap<String, Query>,
}

/// `set_properties`: stores rendered values as node properties.
struct SetProperties {
    properties: Vec<(String, Template)>,
    aliases: Aliases,
}

impl SetProperties {
    fn new(p: SetParams) -> Result<Self, Vec<String>> {
        let aliases = Aliases(p.nodes);
        aliases.check()?;
        let names = aliases.names();
        let mut errors = Vec::new();
        let mut properties = Vec::new();
        for (k, v) in p.properties {
            if k == crate::store::ATTR_IDENT || k == crate::store::ATTR_STATUS {
                errors.push(format!("set_properties: `{k}` cannot be set"));
                continue;
            }
            match template(&v, &names, &format!("set_properties: {k}")) {
                Ok(t) => properties.push((k, t)),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(SetProperties {
                properties,
                aliases,
            })
        } else {
            Err(errors)
        }
    }
}

#[async_trait]
impl Task for SetProperties {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let aliases = self.aliases.resolve(cx).await?;
        let v = values(cx, &aliases);
        let mut props = Map::new();
        for (k, t) in &self.properties {
            props.insert(k.clone(), Value::String(t.render(&v)?.expose().to_owned()));
        }
        cx.set_properties(props).await
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParameterParams {
    name: String,
    property: String,
    #[serde(default = "yes")]
    decrypt: bool,
}

/// `read_parameter`: reads an SSM parameter (a `SecureString`, decrypted) into a node
/// property, e.g. a cluster join token the node's commands then use as `{node.PROP}`.
struct ReadParameter {
    name: Template,
    property: String,
    decrypt: bool,
}

impl ReadParameter {
    fn new(p: ParameterParams) -> Result<Self, Vec<String>> {
        let name = template(&p.name, &[], "read_parameter: name")?;
        if p.property == crate::store::ATTR_IDENT || p.property == crate::store::ATTR_STATUS {
            return Err(vec![format!(
                "read_parameter: `{}` cannot be set",
                p.property
            )]);
        }
        // A decrypted value must land in a property whose name marks it secret, so that it
        // is masked everywhere it could be shown.
        if p.decrypt && !crate::redact::Redactor::default().is_secret(&p.property) {
            return Err(vec![format!(
                "read_parameter: property `{}` would hold a decrypted secret; its name must contain token, secret, password or credential",
                p.property
            )]);
        }
        Ok(ReadParameter {
            name,
            property: p.property,
            decrypt: p.decrypt,
        })
    }
}

#[async_trait]
impl Task for ReadParameter {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let none = BTreeMap::new();
        let name = self.name.render(&values(cx, &none))?.expose().to_owned();
        let value = cx.services.secrets.read(&name, self.decrypt).await?;
        let mut props = Map::new();
        props.insert(self.property.clone(), Value::String(value));
        cx.set_properties(props).await
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotParams {
    #[serde(default)]
    volume_id: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    wait_seconds: u64,
    #[serde(default)]
    property: Option<String>,
}

/// `ec2_snapshot`: snapshots a volume of the node's instance (by id or device name), tagged,
/// optionally waiting (bounded) until it completes and storing its id in a node property.
struct Ec2Snapshot {
    volume: (bool, Template),
    description: Template,
    tags: Vec<(String, Template)>,
    wait: Duration,
    property: Option<String>,
}

impl Ec2Snapshot {
    fn new(p: SnapshotParams) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let volume = match (p.volume_id, p.device) {
            (Some(v), None) => template(&v, &[], "ec2_snapshot: volume_id").map(|t| (true, t)),
            (None, Some(d)) => template(&d, &[], "ec2_snapshot: device").map(|t| (false, t)),
            _ => Err(vec![
                "ec2_snapshot: give exactly one of `volume_id`, `device`".into(),
            ]),
        };
        let description = template(
            p.description
                .as_deref()
                .unwrap_or("{event.name}: {node.Ident}"),
            &[],
            "ec2_snapshot: description",
        );
        let mut tags = Vec::new();
        for (k, v) in p.tags {
            match template(&v, &[], &format!("ec2_snapshot: tags.{k}")) {
                Ok(t) => tags.push((k, t)),
                Err(e) => errors.extend(e),
            }
        }
        match (volume, description) {
            (Ok(volume), Ok(description)) if errors.is_empty() => Ok(Ec2Snapshot {
                volume,
                description,
                tags,
                wait: Duration::from_secs(p.wait_seconds),
                property: p.property,
            }),
            (volume, description) => {
                errors.extend(volume.err().unwrap_or_default());
                errors.extend(description.err().unwrap_or_default());
                Err(errors)
            }
        }
    }
}

#[async_trait]
impl Task for Ec2Snapshot {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), TaskError> {
        let snapshots = cx.services.snapshots.clone().ok_or_else(|| {
            TaskError::failed(format!(
                "{}: this build has no EC2 support (build with the `ec2` feature)",
                cx.name
            ))
        })?;
        let none = BTreeMap::new();
        let v = values(cx, &none);
        let volume = self.volume.1.render(&v)?.expose().to_owned();
        let request = SnapshotRequest {
            instance_id: cx.node()?.id.clone(),
            volume: if self.volume.0 {
                VolumeRef::Id(volume)
            } else {
                VolumeRef::Device(volume)
            },
            description: self.description.render(&v)?.shown().to_owned(),
            tags: self
                .tags
                .iter()
                .map(|(k, t)| t.render(&v).map(|s| (k.clone(), s.shown().to_owned())))
                .collect::<Result<_, _>>()?,
        };
        let id = snapshots.create(&request).await?;
        tracing::info!(snapshot = %id, task = %cx.name, "snapshot started");
        if !self.wait.is_zero() {
            let until = cx.deadline.min_with(cx.services.clock.now(), self.wait);
            snapshots.wait_completed(&id, until).await?;
        }
        if let Some(property) = &self.property {
            let mut props = Map::new();
            props.insert(property.clone(), Value::String(id));
            cx.set_properties(props).await?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PropertyParams {
    property: String,
    #[serde(default)]
    equals: Option<Value>,
    #[serde(default)]
    one_of: Option<Vec<Value>>,
    #[serde(default)]
    present: Option<bool>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    nodes: BTreeMap<String, Query>,
}

/// `node_property`: a check on a property of the node (or of a queried node).
struct NodeProperty {
    property: String,
    test: PropertyTest,
    node: Option<String>,
    aliases: Aliases,
}

enum PropertyTest {
    Equals(Value),
    OneOf(Vec<Value>),
    Present(bool),
}

impl NodeProperty {
    fn new(p: PropertyParams) -> Result<Self, Vec<String>> {
        let aliases = Aliases(p.nodes);
        aliases.check()?;
        let test = match (p.equals, p.one_of, p.present) {
            (Some(v), None, None) => PropertyTest::Equals(v),
            (None, Some(v), None) => PropertyTest::OneOf(v),
            (None, None, Some(b)) => PropertyTest::Present(b),
            _ => {
                return Err(vec![
                    "node_property: give exactly one of `equals`, `one_of`, `present`".into(),
                ]);
            }
        };
        if let Some(n) = &p.node
            && !aliases.0.contains_key(n)
        {
            return Err(vec![format!(
                "node_property: node `{n}` is not an alias in `nodes`"
            )]);
        }
        Ok(NodeProperty {
            property: p.property,
            test,
            node: p.node,
            aliases,
        })
    }
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s == &n.to_string()
        }
        (Value::String(s), Value::Bool(x)) | (Value::Bool(x), Value::String(s)) => {
            s == &x.to_string()
        }
        _ => a == b,
    }
}

#[async_trait]
impl Condition for NodeProperty {
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, TaskError> {
        let aliases = self.aliases.resolve(cx).await?;
        let node = match &self.node {
            Some(a) => aliases
                .get(a)
                .ok_or_else(|| TaskError::failed(format!("{}: no node for {a}", cx.name)))?,
            None => cx.node()?,
        };
        let value = match self.property.as_str() {
            crate::store::ATTR_STATUS => Some(Value::String(node.status.clone())),
            crate::store::ATTR_IDENT => Some(Value::String(node.id.clone())),
            p => node.properties.get(p).cloned(),
        };
        Ok(match (&self.test, value) {
            (PropertyTest::Present(want), v) => v.is_some() == *want,
            (PropertyTest::Equals(want), Some(v)) => loosely_equal(&v, want),
            (PropertyTest::OneOf(list), Some(v)) => list.iter().any(|w| loosely_equal(&v, w)),
            (_, None) => false,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountParams {
    item_type: String,
    #[serde(default)]
    status: Option<OneOrMany>,
    #[serde(default)]
    min: Option<usize>,
    #[serde(default)]
    max: Option<usize>,
    #[serde(default)]
    exclude_self: bool,
}

/// `node_count`: true when the number of nodes of a type (not leaving) is within bounds.
struct NodeCount {
    query: Query,
    min: Option<usize>,
    max: Option<usize>,
}

impl NodeCount {
    fn new(p: CountParams) -> Result<Self, Vec<String>> {
        if p.min.is_none() && p.max.is_none() {
            return Err(vec!["node_count: give `min`, `max` or both".into()]);
        }
        Ok(NodeCount {
            query: Query {
                item_type: p.item_type,
                status: p.status,
                exclude_self: p.exclude_self,
            },
            min: p.min,
            max: p.max,
        })
    }
}

#[async_trait]
impl Condition for NodeCount {
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, TaskError> {
        let n = matching(cx, &self.query).await?.len();
        Ok(self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m))
    }
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
        assert!(errs("route53: {zone_id: Z1}").contains("at least one record"));
        assert!(
            errs("route53: {zone_id: Z1, upsert: [{name: a}]}").contains("`value` or `values`")
        );
        assert!(errs("node_property: {property: a}").contains("exactly one of"));
        assert!(errs("node_count: {item_type: a}").contains("`min`, `max`"));
        assert!(errs("teleport: {}").contains("unknown kind `teleport`"));
        assert_eq!(
            errs("ec2_snapshot: {device: /dev/xvdf, tags: {Name: '{node.Ident}'}}"),
            ""
        );
        assert!(errs("ec2_snapshot: {}").contains("exactly one of `volume_id`, `device`"));
        assert!(errs("ec2_snapshot: {device: x, tags: {a: '{x.y}'}}").contains("tags.a"));
        assert!(errs("[1]").contains("a mapping with one kind"));
        assert!(errs("set_properties: {properties: {ItemStatus: x}}").contains("cannot be set"));
        assert_eq!(
            errs("read_parameter: {name: /swarm/token, property: JoinToken}"),
            ""
        );
        assert!(
            errs("read_parameter: {name: /swarm/token, property: Join}")
                .contains("decrypted secret")
        );
        assert_eq!(
            errs("read_parameter: {name: /swarm/ip, property: ManagerIp, decrypt: false}"),
            ""
        );
    }

    #[test]
    fn long_comments_are_cut_to_ssm_limit() {
        let s = truncate(&"x".repeat(150), SSM_COMMENT_MAX);
        assert_eq!(s.chars().count(), SSM_COMMENT_MAX);
    }
}
