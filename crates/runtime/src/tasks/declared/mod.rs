//! The runtime's side of declared tasks (SPEC 3.2): the core checked each declaration when the
//! configuration compiled; here each kind runs. One kind per file.

mod ec2_snapshot;
mod node_count;
mod node_property;
mod read_parameter;
mod route53;
mod set_properties;
pub(crate) mod sns_report;
mod ssm_command;

use std::collections::BTreeMap;
use std::sync::Arc;

use lifecycle::config::declared::{Aliases, DeclaredCondition, DeclaredTask, Query};
use lifecycle::config::template::Values;
use lifecycle::{Fault, Node};

use super::{Condition, Task, TaskContext};

pub(super) use route53::sent;

/// The task a declaration stands for.
pub(super) fn task(d: &DeclaredTask) -> Arc<dyn Task> {
    match d {
        DeclaredTask::SsmCommand(t) => Arc::new(t.clone()),
        DeclaredTask::Route53(t) => Arc::new(t.clone()),
        DeclaredTask::SnsReport(t) => Arc::new(t.clone()),
        DeclaredTask::SetProperties(t) => Arc::new(t.clone()),
        DeclaredTask::ReadParameter(t) => Arc::new(t.clone()),
        DeclaredTask::Ec2Snapshot(t) => Arc::new(t.clone()),
    }
}

/// The condition a declaration stands for.
pub(super) fn condition(d: &DeclaredCondition) -> Arc<dyn Condition> {
    match d {
        DeclaredCondition::NodeProperty(c) => Arc::new(c.clone()),
        DeclaredCondition::NodeCount(c) => Arc::new(c.clone()),
    }
}

/// The nodes a query finds: of the type, not leaving, as the query filters them.
async fn matching(cx: &TaskContext<'_>, q: &Query) -> Result<Vec<Node>, Fault> {
    let own = cx.resource.node.as_ref().map(|n| n.id.as_str());
    Ok(cx
        .services
        .nodes
        .by_type(&q.item_type)
        .await?
        .into_iter()
        .filter(|n| q.matches(n, own))
        .collect())
}

/// Each alias's node: the first that its query finds.
async fn resolve(cx: &TaskContext<'_>, aliases: &Aliases) -> Result<BTreeMap<String, Node>, Fault> {
    let mut out = BTreeMap::new();
    for (alias, q) in aliases.iter() {
        let node = matching(cx, q).await?.into_iter().next().ok_or_else(|| {
            Fault::permanent(format!(
                "{}: no node of type {} for alias {alias}",
                cx.name, q.item_type
            ))
        })?;
        out.insert(alias.to_owned(), node);
    }
    Ok(out)
}

/// What templates render from in this context.
fn values<'a>(cx: &'a TaskContext<'_>, aliases: &'a BTreeMap<String, Node>) -> Values<'a> {
    Values {
        event: cx.event,
        node: cx.resource.node.as_ref(),
        aliases,
        redactor: &cx.services.redactor,
        transition: cx.transition.as_ref(),
    }
}

/// Cuts `s` to `max` characters, the last one an ellipsis.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    s.chars().take(max.saturating_sub(1)).chain(['…']).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifecycle::config::declared::SSM_COMMENT_MAX;

    #[test]
    fn long_comments_are_cut_to_ssm_limit() {
        let s = truncate(&"x".repeat(150), SSM_COMMENT_MAX);
        assert_eq!(s.chars().count(), SSM_COMMENT_MAX);
        assert!(s.ends_with('…'));
        assert_eq!(truncate("short", SSM_COMMENT_MAX), "short");
    }
}
