//! `ssm_command`: waits for the SSM agent, sends the command, stores its record.

use async_trait::async_trait;
use lifecycle::config::declared::{SSM_COMMENT_MAX, SsmCommand};
use lifecycle::event::COMMAND_MARKER;
use lifecycle::{CommandRecord, Fault, Sensitive};

use super::{resolve, truncate, values};
use crate::capability::ShellCommand;
use crate::tasks::{Task, TaskContext};

#[async_trait]
impl Task for SsmCommand {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let aliases = resolve(cx, &self.aliases).await?;
        let target = match &self.target {
            Some(alias) => aliases
                .get(alias)
                .map(|n| n.id.clone())
                .ok_or_else(|| Fault::permanent(format!("{}: no node for {alias}", cx.name)))?,
            None => cx.node()?.id.clone(),
        };
        let v = values(cx, &aliases);
        let mut commands = vec![Sensitive::plain(COMMAND_MARKER)];
        for t in &self.commands {
            commands.push(t.render(&v)?);
        }
        let comment = truncate(self.comment.render(&v)?.shown(), SSM_COMMENT_MAX);
        let key = format!(
            "{}/{}/{}/{}",
            cx.event.id.as_deref().unwrap_or(&cx.event.name),
            cx.name,
            target,
            cx.resource.node.as_ref().map_or("", |n| n.status.as_str())
        );
        let instance_ids = vec![target];
        let until = cx
            .deadline
            .min_with(cx.services.clock.now(), self.wait_online);
        cx.services.runner.wait_online(&instance_ids, until).await?;
        let command = ShellCommand {
            instance_ids: instance_ids.clone(),
            commands,
            comment: comment.clone(),
            execution_timeout: self.execution_timeout,
            idempotency_key: key,
        };
        let id = cx
            .services
            .runner
            .send(&command)
            .await
            .map_err(|e| e.scrubbed(&command.commands))?;
        let record = CommandRecord {
            id: id.clone(),
            running_on: instance_ids,
            comment,
            commands: command
                .commands
                .iter()
                .map(|c| c.shown().to_owned())
                .collect(),
            event_name: cx.event.name.clone(),
            lifecycle: cx.event.lifecycle.clone(),
        };
        cx.services.commands.put_command(&record).await?;
        tracing::info!(command = %id, task = %cx.name, "command sent and registered");
        Ok(())
    }
}
