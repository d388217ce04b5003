//! `node_property`: a check on a property of the node (or of a queried node).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Aliases, Query};
use crate::node::{ATTR_IDENT, ATTR_STATUS, Node};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
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

/// What a `node_property` condition checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyTest {
    /// The property equals the value (`"3"` equals `3`).
    Equals(Value),
    /// The property equals one of the values.
    OneOf(Vec<Value>),
    /// The property is present (`true`) or absent (`false`).
    Present(bool),
}

/// A checked `node_property` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NodeProperty {
    /// The property (`ItemStatus` and `Ident` included).
    pub property: String,
    /// The check.
    pub test: PropertyTest,
    /// The alias of the node to check; `None`: the event's node.
    pub node: Option<String>,
    /// Node aliases.
    pub aliases: Aliases,
}

impl NodeProperty {
    pub(super) fn new(p: Params) -> Result<Self, Vec<String>> {
        let aliases = Aliases::new(p.nodes)?;
        let test = match (p.equals, p.one_of, p.present) {
            (Some(v), None, None) => PropertyTest::Equals(v),
            (None, Some(v), None) => PropertyTest::OneOf(v),
            (None, None, Some(b)) => PropertyTest::Present(b),
            _ => {
                return Err(vec![
                    "give exactly one of `equals`, `one_of`, `present`".into(),
                ]);
            }
        };
        if let Some(n) = &p.node
            && !aliases.contains(n)
        {
            return Err(vec![format!("node `{n}` is not an alias in `nodes`")]);
        }
        Ok(NodeProperty {
            property: p.property,
            test,
            node: p.node,
            aliases,
        })
    }

    /// The check on `node`.
    pub fn holds_for(&self, node: &Node) -> bool {
        let value = match self.property.as_str() {
            ATTR_STATUS => Some(Value::String(node.status.clone())),
            ATTR_IDENT => Some(Value::String(node.id.clone())),
            p => node.properties.get(p).cloned(),
        };
        match (&self.test, value) {
            (PropertyTest::Present(want), v) => v.is_some() == *want,
            (PropertyTest::Equals(want), Some(v)) => loosely_equal(&v, want),
            (PropertyTest::OneOf(list), Some(v)) => list.iter().any(|w| loosely_equal(&v, w)),
            (_, None) => false,
        }
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
