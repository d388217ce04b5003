//! `read_parameter`: reads an SSM parameter into a node property.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::ReadParameter;
use serde_json::{Map, Value};

use super::values;
use crate::tasks::{Task, TaskContext};

#[async_trait]
impl Task for ReadParameter {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let none = BTreeMap::new();
        let name = self.name.render(&values(cx, &none))?.expose().to_owned();
        let value = cx.services.secrets.read(&name, self.decrypt).await?;
        let mut props = Map::new();
        props.insert(self.property.clone(), Value::String(value));
        cx.set_properties(props).await
    }
}
