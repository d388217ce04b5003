//! Placeholders in declared tasks: `{node.InstanceIp}`, `{event.name}`, `{metadata.type}`,
//! `{lifecycle.AutoScalingGroupName}`, `{transition.error}`, `{ALIAS.PROP}` for a node a task
//! queries (SPEC 3.2).
//!
//! Syntax: `{root.name}`. `{{` and `}}` are literal braces, and a `{` right after `$` is left
//! alone so shell expansions such as `${HOME}` pass through. Templates are checked when the
//! configuration loads: an unknown root or a malformed placeholder is a configuration error.
//! Values of secret properties — secret by name, or recorded on their node as secret-derived
//! (see [`Redactor::is_secret_property`]) — render masked in the shown text, and make the
//! rendered [`Sensitive`] tainted: whatever stores it must keep it secret (SPEC 9).

use std::collections::BTreeMap;

use serde_json::Value;

use serde::{Serialize, Serializer};

use crate::event::Event;
use crate::fault::Fault;
use crate::node::Node;
use crate::redact::{Redactor, Sensitive};

/// Event fields a template may name as `{event.FIELD}`.
pub const EVENT_FIELDS: &[&str] = &[
    "name",
    "id",
    "source",
    "time",
    "region",
    "account",
    "instance_id",
    "command_id",
    "status",
    "rule",
];

/// Fields of the transition being run a template may name as `{transition.FIELD}`: the
/// trigger, the state it left (`source`), where it leads (`dest`; empty for an internal
/// transition), and the last error reported (`error`; empty when there is none) — what a
/// failure report says.
pub const TRANSITION_FIELDS: &[&str] = &["trigger", "source", "dest", "error"];

/// What `{transition.FIELD}` renders from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionFacts {
    /// The trigger's name.
    pub trigger: String,
    /// The state it was tried from.
    pub source: String,
    /// Where it leads; `None`: internal.
    pub dest: Option<String>,
    /// The last error reported while processing the event, if any.
    pub error: Option<String>,
}

/// Lifecycle fields a template may name as `{lifecycle.FIELD}`.
pub const LIFECYCLE_FIELDS: &[&str] = &[
    "EC2InstanceId",
    "AutoScalingGroupName",
    "LifecycleHookName",
    "LifecycleActionToken",
    "LifecycleTransition",
    "Origin",
    "Destination",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var { root: String, field: String },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Serialize for Template {
    /// A template serialises as it was written.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl Template {
    /// Parses `text`; `aliases` are the node aliases the declaring task queries.
    ///
    /// # Errors
    /// A message naming the bad placeholder.
    pub fn parse(text: &str, aliases: &[&str]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        let mut prev = '\0';
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, n)| *n) == Some('{') => {
                    chars.next();
                    lit.push('{');
                    prev = '{';
                    continue;
                }
                '}' if chars.peek().map(|(_, n)| *n) == Some('}') => {
                    chars.next();
                    lit.push('}');
                    prev = '}';
                    continue;
                }
                '{' if prev != '$' => {
                    let rest = &text[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed placeholder in {text:?}"));
                    };
                    let inner = &rest[..end];
                    let Some((root, field)) = inner.split_once('.') else {
                        return Err(format!(
                            "placeholder {{{inner}}} in {text:?} must be {{root.name}} (write {{{{ for a literal brace)"
                        ));
                    };
                    let valid_name = |s: &str| {
                        !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_-:".contains(c))
                    };
                    if !valid_name(root) || !valid_name(field) {
                        return Err(format!("malformed placeholder {{{inner}}} in {text:?}"));
                    }
                    match root {
                        "node" | "metadata" => {}
                        "event" if EVENT_FIELDS.contains(&field) => {}
                        "event" => {
                            return Err(format!(
                                "unknown placeholder {{{inner}}}: event fields are {}",
                                EVENT_FIELDS.join(", ")
                            ));
                        }
                        "transition" if TRANSITION_FIELDS.contains(&field) => {}
                        "transition" => {
                            return Err(format!(
                                "unknown placeholder {{{inner}}}: transition fields are {}",
                                TRANSITION_FIELDS.join(", ")
                            ));
                        }
                        "lifecycle" if LIFECYCLE_FIELDS.contains(&field) => {}
                        "lifecycle" => {
                            return Err(format!(
                                "unknown placeholder {{{inner}}}: lifecycle fields are {}",
                                LIFECYCLE_FIELDS.join(", ")
                            ));
                        }
                        r if aliases.contains(&r) => {}
                        r => {
                            return Err(format!(
                                "unknown placeholder {{{inner}}}: `{r}` is not node, event, metadata, lifecycle, transition{}",
                                if aliases.is_empty() {
                                    String::new()
                                } else {
                                    format!(" or a queried node ({})", aliases.join(", "))
                                }
                            ));
                        }
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var {
                        root: root.to_owned(),
                        field: field.to_owned(),
                    });
                    // Skip the placeholder's characters.
                    for _ in 0..inner.chars().count() + 1 {
                        chars.next();
                    }
                    prev = '}';
                    continue;
                }
                _ => lit.push(c),
            }
            prev = c;
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template {
            source: text.to_owned(),
            parts,
        })
    }

    /// Renders the template: the real text, and the shown text in which every value that
    /// came from a secret is [`MASK`](crate::redact::MASK).
    ///
    /// # Errors
    /// A placeholder whose value is missing (e.g. the node has no such property).
    pub fn render(&self, v: &Values<'_>) -> Result<Sensitive, Fault> {
        let mut out = Sensitive::plain("");
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push(&Sensitive::plain(t.clone())),
                Part::Var { root, field } => out.push(&v.lookup(root, field)?),
            }
        }
        Ok(out)
    }
}

/// What templates render from.
pub struct Values<'a> {
    /// The event.
    pub event: &'a Event,
    /// The event's node.
    pub node: Option<&'a Node>,
    /// Queried nodes by alias.
    pub aliases: &'a BTreeMap<String, Node>,
    /// Which properties are secret (by name; each node's record of secret-derived
    /// properties is consulted too).
    pub redactor: &'a Redactor,
    /// The transition being run, when a trigger runs the task.
    pub transition: Option<&'a TransitionFacts>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Values<'_> {
    fn lookup(&self, root: &str, field: &str) -> Result<Sensitive, Fault> {
        let missing = || Fault::permanent(format!("placeholder {{{root}.{field}}} has no value"));
        let node_prop = |node: &Node| -> Result<Sensitive, Fault> {
            let value = node.property_str(field).ok_or_else(|| {
                Fault::permanent(format!(
                    "placeholder {{{root}.{field}}}: node {} has no property {field}",
                    node.id
                ))
            })?;
            if self.redactor.is_secret_property(node, field) {
                Ok(Sensitive::secret(value))
            } else {
                Ok(Sensitive::plain(value))
            }
        };
        match root {
            "node" => node_prop(self.node.ok_or_else(missing)?),
            "metadata" => {
                let lc = self.event.lifecycle.as_ref().ok_or_else(missing)?;
                let v = lc
                    .metadata
                    .get(field)
                    .and_then(scalar)
                    .ok_or_else(missing)?;
                if self.redactor.is_secret(field) {
                    Ok(Sensitive::secret(v))
                } else {
                    Ok(Sensitive::plain(v))
                }
            }
            "transition" => {
                let t = self.transition.ok_or_else(missing)?;
                let v = match field {
                    "trigger" => t.trigger.clone(),
                    "source" => t.source.clone(),
                    "dest" => t.dest.clone().unwrap_or_default(),
                    "error" => t.error.clone().unwrap_or_default(),
                    _ => return Err(missing()),
                };
                Ok(Sensitive::plain(v))
            }
            "lifecycle" => {
                let lc = self.event.lifecycle.as_ref().ok_or_else(missing)?;
                let v = match field {
                    "EC2InstanceId" => Some(lc.instance_id.clone()),
                    "AutoScalingGroupName" => Some(lc.auto_scaling_group.clone()),
                    "LifecycleHookName" => Some(lc.hook_name.clone()),
                    "LifecycleActionToken" => lc.token.clone(),
                    "LifecycleTransition" => Some(lc.transition.as_str().to_owned()),
                    "Origin" => lc.origin.clone(),
                    "Destination" => lc.destination.clone(),
                    _ => None,
                };
                v.map(Sensitive::plain).ok_or_else(missing)
            }
            "event" => {
                let e = self.event;
                let v = match field {
                    "name" => Some(e.name.clone()),
                    "id" => e.id.clone(),
                    "source" => Some(e.source.as_str().to_owned()),
                    "time" => e.time.clone(),
                    "region" => e.region.clone(),
                    "account" => e.account.clone(),
                    "instance_id" => e
                        .lifecycle
                        .as_ref()
                        .map(|l| l.instance_id.clone())
                        .or_else(|| e.resource_instance().map(str::to_owned)),
                    "command_id" => e.command.as_ref().map(|c| c.command_id.clone()),
                    "status" => e.command.as_ref().map(|c| c.status.clone()),
                    "rule" => e.rule.clone(),
                    _ => None,
                };
                v.map(Sensitive::plain).ok_or_else(missing)
            }
            alias => node_prop(self.aliases.get(alias).ok_or_else(missing)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placeholders_literals_and_shell_expansions() {
        let t = Template::parse("a {node.Ip} ${HOME} {{x}} {manager.Ip}", &["manager"]).unwrap();
        assert_eq!(t.parts.len(), 4);
        assert_eq!(
            t.parts[2],
            Part::Text(" ${HOME} {x} ".into()),
            "{:?}",
            t.parts
        );
    }

    #[test]
    fn values_from_secrets_render_masked_and_tainted() {
        use crate::event::Source;
        let serde_json::Value::Object(properties) = serde_json::json!({
            "WorkerToken": "SWMTKN-1", "JoinCommand": "join SWMTKN-1", "ApiKey": "k",
            "InstanceIp": "10.0.0.1", "SecretProperties": ["JoinCommand"],
        }) else {
            unreachable!()
        };
        let node = Node {
            id: "i-1".into(),
            status: "ready".into(),
            properties,
        };
        let event = Event::new(Source::AutoScaling, "launch");
        let aliases = BTreeMap::new();
        let redactor = Redactor::with_extra(["apikey"]);
        let v = Values {
            event: &event,
            node: Some(&node),
            aliases: &aliases,
            redactor: &redactor,
            transition: None,
        };
        let render = |t: &str| Template::parse(t, &[]).unwrap().render(&v).unwrap();
        for (t, shown) in [
            ("--token {node.WorkerToken}", "--token ***"),
            ("run {node.JoinCommand}", "run ***"),
            ("key {node.ApiKey}", "key ***"),
        ] {
            let s = render(t);
            assert_eq!(s.shown(), shown, "{t}");
            assert!(s.is_secret(), "{t}");
        }
        let ip = render("{node.InstanceIp}:2377");
        assert_eq!(ip.shown(), "10.0.0.1:2377");
        assert!(!ip.is_secret());
    }

    #[test]
    fn refuses_unknown_roots_and_fields() {
        for (text, needle) in [
            ("{nod.Ip}", "`nod` is not node"),
            ("{event.colour}", "event fields are"),
            ("{lifecycle.Foo}", "lifecycle fields are"),
            ("{node}", "must be {root.name}"),
            ("{node.Ip", "unclosed"),
            ("{manager.Ip}", "`manager` is not node"),
        ] {
            let e = Template::parse(text, &[]).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
