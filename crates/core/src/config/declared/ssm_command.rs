//! `ssm_command`: a shell command sent through SSM to the node (or a queried node), after its
//! agent is online; the status event resumes from the command record it leaves.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Aliases, Query, one_or_many, template, templates};
use crate::config::template::Template;

/// SSM's limit on a command's comment.
pub const SSM_COMMENT_MAX: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    #[serde(deserialize_with = "one_or_many")]
    commands: Vec<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    nodes: BTreeMap<String, Query>,
    #[serde(default = "default_online_wait")]
    wait_online_seconds: u64,
    #[serde(default)]
    execution_timeout_seconds: Option<u64>,
}

fn default_online_wait() -> u64 {
    120
}

/// The longest `executionTimeout` `AWS-RunShellScript` accepts: 48 hours.
pub const EXECUTION_TIMEOUT_MAX: u64 = 172_800;

/// A checked `ssm_command` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SsmCommand {
    /// The shell lines.
    pub commands: Vec<Template>,
    /// The command's comment (cut to [`SSM_COMMENT_MAX`] when sent).
    pub comment: Template,
    /// The alias of the node to run on; `None`: the event's node.
    pub target: Option<String>,
    /// Node aliases for placeholders and `target`.
    pub aliases: Aliases,
    /// How long to wait at most for the SSM agent to be online.
    pub wait_online: Duration,
    /// How long the command may run on the instance (`executionTimeout`); `None`: the
    /// runtime's default (the Lambda's `LIFECYCLE_COMMAND_TIMEOUT_SECONDS`, 600 s). Always
    /// sent explicitly, so that it cannot race the lifecycle hook's timeout.
    pub execution_timeout: Option<Duration>,
}

impl SsmCommand {
    pub(super) fn new(name: &str, p: Params) -> Result<Self, Vec<String>> {
        let aliases = Aliases::new(p.nodes)?;
        let names = aliases.names();
        if p.commands.is_empty() {
            return Err(vec!["`commands` is empty".into()]);
        }
        let mut errors = Vec::new();
        if let Some(t) = p.execution_timeout_seconds
            && !(1..=EXECUTION_TIMEOUT_MAX).contains(&t)
        {
            errors.push(format!(
                "execution_timeout_seconds must be between 1 and {EXECUTION_TIMEOUT_MAX}, not {t}"
            ));
        }
        if let Some(t) = &p.target
            && t != "node"
            && !aliases.contains(t)
        {
            errors.push(format!(
                "target `{t}` is neither `node` nor an alias in `nodes`"
            ));
        }
        let commands = templates(&p.commands, &names, "commands");
        let default_comment = format!("{{event.name}} -> {name}");
        let comment = template(
            p.comment.as_deref().unwrap_or(&default_comment),
            &names,
            "comment",
        );
        match (commands, comment) {
            (Ok(commands), Ok(comment)) if errors.is_empty() => Ok(SsmCommand {
                commands,
                comment,
                target: p.target.filter(|t| t != "node"),
                aliases,
                wait_online: Duration::from_secs(p.wait_online_seconds),
                execution_timeout: p.execution_timeout_seconds.map(Duration::from_secs),
            }),
            (commands, comment) => {
                errors.extend(commands.err().unwrap_or_default());
                errors.extend(comment.err().unwrap_or_default());
                Err(errors)
            }
        }
    }
}
