//! What can be wrong with a configuration: every problem at once, each naming where it is.

use std::fmt;

/// What kind of problem a [`ConfigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not YAML, or not the right shape at all.
    Syntax,
    /// A key that is not part of the format.
    UnknownKey,
    /// A value of the wrong type.
    WrongType,
    /// A required key is missing or empty.
    Missing,
    /// A trigger uses the reserved name `trigger`.
    ReservedName,
    /// Two transitions lead to the same destination.
    DuplicateDest,
    /// A task or condition name that nothing registers.
    UnknownName,
    /// A task used as a condition, or a condition used as a task.
    WrongKind,
    /// `initial_state` is not a state of the machine.
    UnknownState,
    /// A declared task (`tasks:` section) is wrong.
    DeclaredTask,
    /// The reconciliation sweep's settings (`reconcile:` section) are wrong.
    Reconcile,
}

/// One problem in a configuration, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What kind of problem.
    pub kind: ConfigErrorKind,
    /// Where: e.g. `transitions[1] (joined -> dns_updated), trigger update_dns, key conditions`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "configuration has {n} error{}",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}
