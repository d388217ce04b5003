//! `read_parameter`: reads an SSM parameter (a `SecureString`, decrypted) into a node
//! property, e.g. a cluster join token the node's commands then use as `{node.PROP}`.
//!
//! A decrypted value is secret whatever the property is called: stored under a name that does
//! not look secret, the node records that name as secret-derived (SPEC 9), so it is masked
//! wherever the node is shown, now and in later invocations.

use serde::{Deserialize, Serialize};

use super::{template, yes};
use crate::config::template::Template;
use crate::node::{ATTR_IDENT, ATTR_STATUS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    name: String,
    property: String,
    #[serde(default = "yes")]
    decrypt: bool,
}

/// A checked `read_parameter` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReadParameter {
    /// The parameter's name.
    pub name: Template,
    /// The node property that receives the value.
    pub property: String,
    /// Decrypt a `SecureString`; the value is then secret (masked wherever it is shown).
    pub decrypt: bool,
}

impl ReadParameter {
    pub(super) fn new(p: Params) -> Result<Self, Vec<String>> {
        let name = template(&p.name, &[], "name")?;
        if p.property == ATTR_IDENT || p.property == ATTR_STATUS {
            return Err(vec![format!("`{}` cannot be set", p.property)]);
        }
        Ok(ReadParameter {
            name,
            property: p.property,
            decrypt: p.decrypt,
        })
    }
}
