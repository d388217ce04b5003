//! What the state table holds: nodes and command records (SPEC 2.4, 2.5), as plain data with
//! their item forms. Reading an item is strict about types and names the attribute that is
//! wrong ([`Fault::Corrupt`]); the stores that keep items live outside the core.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::LifecycleData;
use crate::fault::Fault;

/// The status a node has when it is not in the table.
pub const STATUS_NEW: &str = "new";

/// Statuses in which a node counts as new (cloud-init has not finished).
pub const NEW_STATUSES: &[&str] = &["new", "pending", "finished_cloud_init"];

/// Item attribute holding the key.
pub const ATTR_IDENT: &str = "Ident";
/// Item attribute holding a node's state.
pub const ATTR_STATUS: &str = "ItemStatus";
/// Item attribute holding the item's type (`worker`, `manager`, `command`, ...).
pub const ATTR_TYPE: &str = "ItemType";
/// Node attribute counting the deliveries in a row that ended with a transient fault
/// (SPEC 9): once it reaches `max_transient_attempts`, the next such fault is handled as a
/// permanent one. Reset when a delivery gets further.
pub const ATTR_TRANSIENT_ATTEMPTS: &str = "TransientAttempts";
/// Node attribute listing the properties that hold a secret-derived value under a name that
/// does not look secret (SPEC 9): a value rendered from a secret, or a decrypted parameter,
/// stored by `set_properties` or `read_parameter`. A list of property names; the
/// [`Redactor`](crate::redact::Redactor) masks them wherever the node is shown, in this
/// invocation and every later one.
pub const ATTR_SECRET_PROPERTIES: &str = "SecretProperties";

/// Node attribute: when the node's state last changed (epoch milliseconds), written with
/// every state write. The reconciliation sweep ([`crate::reconcile`]) and `lifecycle nodes`
/// read a node's age from it; an item without it (written before it existed, or by hand)
/// has no known age.
pub const ATTR_CHANGED_AT: &str = "ChangedAt";

/// `ItemType` of a command record.
pub const TYPE_COMMAND: &str = "command";

/// `ItemType` of a node whose lifecycle metadata names no `type` (as the original gave it).
pub const TYPE_UNKNOWN: &str = "unknown";

/// Checks properties about to be written: `ItemType` keys the type index, so it must be a
/// non-empty string (DynamoDB refuses anything else with a `ValidationException`, and a
/// node without a usable type is invisible to node queries).
///
/// # Errors
/// A permanent [`Fault::Task`] naming the value, before anything is written.
pub fn check_properties(id: &str, properties: &Map<String, Value>) -> Result<(), Fault> {
    match properties.get(ATTR_TYPE) {
        None => Ok(()),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        Some(other) => Err(Fault::permanent(format!(
            "node {id}: `{ATTR_TYPE}` must be a non-empty string (it keys the type index), not {other}"
        ))),
    }
}

/// The key of a table item.
///
/// # Errors
/// [`Fault::Corrupt`] when `Ident` is missing or not a non-empty string.
pub fn ident_of(item: &Map<String, Value>) -> Result<String, Fault> {
    match item.get(ATTR_IDENT) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(Fault::Corrupt {
            id: "?".into(),
            reason: format!("`{ATTR_IDENT}` is missing or not a non-empty string"),
        }),
    }
}

/// A node: one instance's item in the state table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// `Ident`: the instance id.
    pub id: String,
    /// `ItemStatus`: the node's state.
    pub status: String,
    /// Every other attribute (`ItemType`, `InstanceIp`, tokens, ...), with its JSON type kept.
    pub properties: Map<String, Value>,
}

impl Node {
    /// The deliveries in a row that ended with a transient fault ([`ATTR_TRANSIENT_ATTEMPTS`]).
    pub fn transient_attempts(&self) -> u32 {
        self.properties
            .get(ATTR_TRANSIENT_ATTEMPTS)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    }

    /// When the node's state last changed ([`ATTR_CHANGED_AT`], epoch milliseconds); `None`
    /// when the attribute is absent or not a non-negative whole number.
    pub fn changed_at(&self) -> Option<std::time::SystemTime> {
        changed_at(&self.properties)
    }

    /// The names of the properties recorded as secret-derived ([`ATTR_SECRET_PROPERTIES`]):
    /// empty when the attribute is missing.
    ///
    /// # Errors
    /// [`Fault::Corrupt`] when the attribute is not a list of strings (the
    /// [`Redactor`](crate::redact::Redactor) then masks every property of the node).
    pub fn secret_properties(&self) -> Result<BTreeSet<String>, Fault> {
        match self.properties.get(ATTR_SECRET_PROPERTIES) {
            None | Some(Value::Null) => Ok(BTreeSet::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| Fault::Corrupt {
                        id: self.id.clone(),
                        reason: format!("`{ATTR_SECRET_PROPERTIES}` holds a non-string"),
                    })
                })
                .collect(),
            Some(_) => Err(Fault::Corrupt {
                id: self.id.clone(),
                reason: format!("`{ATTR_SECRET_PROPERTIES}` is not a list"),
            }),
        }
    }

    /// A node that is not in the table: status `new`, no properties.
    pub fn absent(id: impl Into<String>) -> Self {
        Node {
            id: id.into(),
            status: STATUS_NEW.to_owned(),
            properties: Map::new(),
        }
    }

    /// True when the item is the tombstone `remove_from_db` left (SPEC 9): a late event does
    /// not bring the node back.
    pub fn is_removed(&self) -> bool {
        self.properties
            .get(crate::delivery::ATTR_REMOVED)
            .and_then(Value::as_bool)
            == Some(true)
    }

    /// True while cloud-init has not finished (status `new`, `pending`, `finished_cloud_init`).
    pub fn is_new(&self) -> bool {
        NEW_STATUSES.contains(&self.status.as_str())
    }

    /// `ItemType`, when it is a string.
    pub fn item_type(&self) -> Option<&str> {
        self.properties.get(ATTR_TYPE).and_then(Value::as_str)
    }

    /// A property as a string: strings as they are, numbers and booleans formatted.
    pub fn property_str(&self, name: &str) -> Option<String> {
        match name {
            ATTR_IDENT => Some(self.id.clone()),
            ATTR_STATUS => Some(self.status.clone()),
            _ => match self.properties.get(name)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            },
        }
    }

    /// Reads a node from a table item.
    ///
    /// # Errors
    /// [`Fault::Corrupt`] when `Ident` is missing or not a string, or `ItemStatus` is
    /// present but not a string. A missing `ItemStatus` reads as `new`.
    pub fn from_item(mut item: Map<String, Value>) -> Result<Self, Fault> {
        let id = ident_of(&item)?;
        item.remove(ATTR_IDENT);
        // The lease and the delivery entries belong to the delivery machinery, not to the
        // operator's properties.
        item.retain(|k, _| !crate::delivery::is_internal(k));
        let status = match item.remove(ATTR_STATUS) {
            None | Some(Value::Null) => STATUS_NEW.to_owned(),
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(Fault::Corrupt {
                    id,
                    reason: format!("`{ATTR_STATUS}` is not a string"),
                });
            }
        };
        Ok(Node {
            id,
            status,
            properties: item,
        })
    }

    /// Reads an item a node query returned: `None` for a malformed item, which is logged
    /// and skipped, so another node's bad item never moves the node being processed (SPEC 9).
    pub fn from_query_item(item: Map<String, Value>) -> Option<Self> {
        Node::from_item(item)
            .map_err(|e| tracing::error!(error = %e, "a malformed item skipped by a node query"))
            .ok()
    }

    /// The node as a table item (`Ident` and `ItemStatus` included).
    pub fn to_item(&self) -> Map<String, Value> {
        let mut item = self.properties.clone();
        item.insert(ATTR_IDENT.into(), Value::String(self.id.clone()));
        item.insert(ATTR_STATUS.into(), Value::String(self.status.clone()));
        item
    }
}

/// When an item's state last changed ([`ATTR_CHANGED_AT`]): `None` when absent or not a
/// non-negative whole number of milliseconds.
pub fn changed_at(item: &Map<String, Value>) -> Option<std::time::SystemTime> {
    item.get(ATTR_CHANGED_AT)
        .and_then(Value::as_u64)
        .map(crate::delivery::from_epoch_ms)
}

/// A command record: an SSM command sent on behalf of an event, waiting for its status event
/// (SPEC 2.5).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandRecord {
    /// `Ident`: the SSM command id.
    pub id: String,
    /// `RunningOn`: the instance ids the command was sent to.
    pub running_on: Vec<String>,
    /// `Comment`: the comment sent with the command.
    pub comment: String,
    /// `Commands`: the shell commands, with secret values already masked.
    pub commands: Vec<String>,
    /// `EventName`: the name of the event that sent the command (empty when the record has
    /// none: the command event then keeps its own name).
    pub event_name: String,
    /// `LifecycleData`: the lifecycle data of that event, if it had any.
    pub lifecycle: Option<LifecycleData>,
}

impl CommandRecord {
    /// Reads a command record from a table item, tolerantly: `Commands` may be a string or a
    /// list, `RunningOn` a string or a list, `LifecycleData.NotificationMetadata` an object or
    /// a JSON string.
    ///
    /// # Errors
    /// [`Fault::Corrupt`] naming the attribute that is missing or of the wrong type.
    pub fn from_item(item: &Map<String, Value>) -> Result<Self, Fault> {
        let id = ident_of(item)?;
        let corrupt = |reason: String| Fault::Corrupt {
            id: id.clone(),
            reason,
        };
        let strings = |name: &str| -> Result<Vec<String>, Fault> {
            match item.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| corrupt(format!("`{name}` holds a non-string")))
                    })
                    .collect(),
                Some(_) => Err(corrupt(format!("`{name}` is not a string or a list"))),
            }
        };
        let string = |name: &str| -> Result<String, Fault> {
            match item.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(corrupt(format!("`{name}` is not a string"))),
            }
        };
        // Records written by older tools may lack `EventName`; the command event then keeps
        // its own name.
        let event_name = string("EventName")?;
        let lifecycle = match item.get("LifecycleData") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<LifecycleData>(v.clone())
                    .map_err(|e| corrupt(format!("`LifecycleData` is invalid: {e}")))?,
            ),
        };
        Ok(CommandRecord {
            running_on: strings("RunningOn")?,
            comment: string("Comment")?,
            commands: strings("Commands")?,
            event_name,
            lifecycle,
            id,
        })
    }

    /// The record as a table item (`ItemType` = `command`).
    pub fn to_item(&self) -> Map<String, Value> {
        let mut item = Map::new();
        item.insert(ATTR_IDENT.into(), Value::String(self.id.clone()));
        item.insert(ATTR_TYPE.into(), Value::String(TYPE_COMMAND.into()));
        let running_on = match self.running_on.as_slice() {
            [one] => Value::String(one.clone()),
            many => Value::from(many.to_vec()),
        };
        item.insert("RunningOn".into(), running_on);
        item.insert("Comment".into(), Value::String(self.comment.clone()));
        item.insert("Commands".into(), Value::from(self.commands.clone()));
        item.insert("EventName".into(), Value::String(self.event_name.clone()));
        if let Some(l) = &self.lifecycle
            && let Ok(v) = serde_json::to_value(l)
        {
            item.insert("LifecycleData".into(), v);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(item: Value) -> Node {
        match item {
            Value::Object(m) => Node::from_item(m).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn changed_at_reads_epoch_milliseconds_and_nothing_else() {
        let n = node(
            json!({"Ident": "i-1", "ItemStatus": "ready", "ChangedAt": 1_767_225_600_123_u64}),
        );
        assert_eq!(
            n.changed_at(),
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_767_225_600_123))
        );
        for bad in [json!(null), json!("1767225600123"), json!(-5), json!(1.5)] {
            let n = node(json!({"Ident": "i-1", "ChangedAt": bad}));
            assert_eq!(n.changed_at(), None, "{bad}");
        }
        assert_eq!(node(json!({"Ident": "i-1"})).changed_at(), None);
    }
}
