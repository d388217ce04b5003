//! `set_properties`: stores rendered values as node properties.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Aliases, Query, template};
use crate::config::template::Template;
use crate::node::{ATTR_IDENT, ATTR_STATUS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    properties: BTreeMap<String, String>,
    #[serde(default)]
    nodes: BTreeMap<String, Query>,
}

/// A checked `set_properties` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SetProperties {
    /// Property name → value, in name order.
    pub properties: Vec<(String, Template)>,
    /// Node aliases for placeholders.
    pub aliases: Aliases,
}

impl SetProperties {
    pub(super) fn new(p: Params) -> Result<Self, Vec<String>> {
        let aliases = Aliases::new(p.nodes)?;
        let names = aliases.names();
        let mut errors = Vec::new();
        let mut properties = Vec::new();
        for (k, v) in p.properties {
            if k == ATTR_IDENT || k == ATTR_STATUS {
                errors.push(format!("`{k}` cannot be set"));
                continue;
            }
            match template(&v, &names, &k) {
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
