//! `node_count`: true when the number of nodes of a type (not leaving) is within bounds.

use serde::{Deserialize, Serialize};

use super::{Query, opt_one_or_many};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    item_type: String,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    status: Option<Vec<String>>,
    #[serde(default)]
    min: Option<usize>,
    #[serde(default)]
    max: Option<usize>,
    #[serde(default)]
    exclude_self: bool,
}

/// A checked `node_count` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NodeCount {
    /// The nodes counted.
    pub query: Query,
    /// At least this many.
    pub min: Option<usize>,
    /// At most this many.
    pub max: Option<usize>,
}

impl NodeCount {
    pub(super) fn new(p: Params) -> Result<Self, Vec<String>> {
        if p.min.is_none() && p.max.is_none() {
            return Err(vec!["give `min`, `max` or both".into()]);
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

    /// True when `count` nodes are within the bounds.
    pub fn holds_for(&self, count: usize) -> bool {
        self.min.is_none_or(|m| count >= m) && self.max.is_none_or(|m| count <= m)
    }
}
