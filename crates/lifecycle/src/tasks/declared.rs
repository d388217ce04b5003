//! Tasks declared in the configuration's `tasks:` section (SPEC 3.2).

use serde_json::Value;

use super::Registered;

/// Builds a declared task from its declaration `{kind: parameters}`.
///
/// # Errors
/// Every problem with the declaration, as messages.
pub fn build(_name: &str, spec: &Value) -> Result<Registered, Vec<String>> {
    Err(vec![format!("unknown declaration {spec}")])
}
