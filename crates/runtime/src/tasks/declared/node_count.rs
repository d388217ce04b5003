//! `node_count`: counts the nodes a query finds.

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::NodeCount;

use super::matching;
use crate::tasks::{Condition, TaskContext};

#[async_trait]
impl Condition for NodeCount {
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, Fault> {
        let n = matching(cx, &self.query).await?.len();
        Ok(self.holds_for(n))
    }
}
