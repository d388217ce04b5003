//! `node_property`: checks a property of the node, or of a queried node.

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::NodeProperty;

use super::resolve;
use crate::tasks::{Condition, TaskContext};

#[async_trait]
impl Condition for NodeProperty {
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, Fault> {
        let aliases = resolve(cx, &self.aliases).await?;
        let node = match &self.node {
            Some(a) => aliases
                .get(a)
                .ok_or_else(|| Fault::permanent(format!("{}: no node for {a}", cx.name)))?,
            None => cx.node()?,
        };
        Ok(self.holds_for(node))
    }
}
