//! `set_properties`: renders the values and stores them on the node.

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::SetProperties;
use serde_json::{Map, Value};

use super::{resolve, values};
use crate::tasks::{Task, TaskContext};

#[async_trait]
impl Task for SetProperties {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let aliases = resolve(cx, &self.aliases).await?;
        let v = values(cx, &aliases);
        let mut props = Map::new();
        for (k, t) in &self.properties {
            props.insert(k.clone(), Value::String(t.render(&v)?.expose().to_owned()));
        }
        cx.set_properties(props).await
    }
}
