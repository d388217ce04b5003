//! `read_parameter`: reads an SSM parameter into a node property. A decrypted value is
//! secret: stored under a name that does not look secret, the node records the name
//! ([`TaskContext::set_sensitive_properties`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use lifecycle::config::declared::ReadParameter;
use lifecycle::{Fault, Sensitive};

use super::values;
use crate::tasks::{Task, TaskContext};

#[async_trait]
impl Task for ReadParameter {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let none = BTreeMap::new();
        let name = self.name.render(&values(cx, &none))?;
        let value = cx
            .services
            .secrets
            .read(&name, self.decrypt)
            .await
            .map_err(|e| e.scrubbed([&name]))?;
        let value = if self.decrypt || name.is_secret() {
            Sensitive::secret(value)
        } else {
            Sensitive::plain(value)
        };
        cx.set_sensitive_properties(vec![(self.property.clone(), value)])
            .await
    }
}
