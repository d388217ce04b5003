//! `read_parameter`: reads an SSM parameter (a `SecureString`, decrypted) into a node
//! property, e.g. a cluster join token the node's commands then use as `{node.PROP}`.

use serde::{Deserialize, Serialize};

use super::{template, yes};
use crate::config::template::Template;
use crate::node::{ATTR_IDENT, ATTR_STATUS};
use crate::redact::Redactor;

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
    /// Decrypt a `SecureString`.
    pub decrypt: bool,
}

impl ReadParameter {
    /// `redactor` holds the configuration's `redact:` words: a decrypted value must land in a
    /// property whose name marks it secret, so that it is masked wherever it could be shown.
    pub(super) fn new(p: Params, redactor: &Redactor) -> Result<Self, Vec<String>> {
        let name = template(&p.name, &[], "name")?;
        if p.property == ATTR_IDENT || p.property == ATTR_STATUS {
            return Err(vec![format!("`{}` cannot be set", p.property)]);
        }
        if p.decrypt && !redactor.is_secret(&p.property) {
            return Err(vec![format!(
                "property `{}` would hold a decrypted secret; its name must contain token, secret, password, credential or a word of `redact:`",
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
