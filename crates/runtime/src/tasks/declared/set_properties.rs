//! `set_properties`: renders the values and stores them on the node. A value rendered from a
//! secret stays secret under whatever name it is stored: the node records the name
//! ([`TaskContext::set_sensitive_properties`]).

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::SetProperties;

use super::{resolve, values};
use crate::tasks::{Task, TaskContext};

#[async_trait]
impl Task for SetProperties {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let aliases = resolve(cx, &self.aliases).await?;
        let v = values(cx, &aliases);
        let mut props = Vec::with_capacity(self.properties.len());
        for (k, t) in &self.properties {
            props.push((k.clone(), t.render(&v)?));
        }
        cx.set_sensitive_properties(props).await
    }
}
