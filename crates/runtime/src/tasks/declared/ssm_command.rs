//! `ssm_command`: waits for the SSM agent, sends the command at most once per transition and
//! node, stores its record.

use async_trait::async_trait;
use lifecycle::config::declared::{SSM_COMMENT_MAX, SsmCommand};
use lifecycle::delivery::{DELIVERY_PREFIX, Reservation, delivery_key, key_line, send_key};
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
        // At most once per transition and node (SPEC 9): the key names the event (its
        // lifecycle action, else its id), the task, the target and the state it runs in.
        let key = format!(
            "{}/{}/{}/{}",
            delivery_key(cx.event).map_or_else(
                || cx.event.name.clone(),
                |k| k.trim_start_matches(DELIVERY_PREFIX).to_owned()
            ),
            cx.name,
            target,
            cx.resource.node.as_ref().map_or("", |n| n.status.as_str())
        );
        let mut commands = vec![
            Sensitive::plain(COMMAND_MARKER),
            Sensitive::plain(key_line(&key)),
        ];
        for t in &self.commands {
            commands.push(t.render(&v)?);
        }
        let comment = truncate(self.comment.render(&v)?.shown(), SSM_COMMENT_MAX);
        let command = ShellCommand {
            instance_ids: vec![target],
            commands,
            comment: comment.clone(),
            execution_timeout: self.execution_timeout,
            idempotency_key: key,
        };
        let id = send_once(cx, &command, self.wait_online)
            .await
            .map_err(|e| e.scrubbed(&command.commands))?;
        let record = CommandRecord {
            id: id.clone(),
            running_on: command.instance_ids.clone(),
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

/// Sends `command` at most once for its idempotency key, guarded by a conditional write
/// ([`lifecycle::delivery::reserve`]): a send already made returns its command id; a send
/// whose outcome is unknown (its invocation died, or lost SSM's response) is looked for in
/// SSM before anything is sent again.
async fn send_once(
    cx: &TaskContext<'_>,
    command: &ShellCommand,
    wait_online: std::time::Duration,
) -> Result<String, Fault> {
    let services = cx.services;
    let key = &command.idempotency_key;
    let guard = send_key(key);
    let owner = cx.lease.owner.as_str();
    let expires = services.clock.now() + cx.rules.remember;
    let reservation = services
        .commands
        .reserve_send(&guard, owner, expires, services.clock.now())
        .await?;
    match reservation {
        Reservation::Sent { command_id } => {
            tracing::info!(command = %command_id, "command already sent for this transition; not sending it again");
            return Ok(command_id);
        }
        Reservation::Unknown => {
            if let Some(id) = services
                .runner
                .find_sent(&command.instance_ids, key)
                .await?
            {
                tracing::info!(command = %id, "a send of an earlier delivery went through; not sending it again");
                services.commands.mark_sent(&guard, &id, expires).await?;
                return Ok(id);
            }
            tracing::info!("an earlier delivery reserved this send and did not make it; sending");
            services
                .commands
                .take_over_send(&guard, owner, expires)
                .await?;
        }
        Reservation::Fresh => {}
    }
    let until = cx.deadline.min_with(services.clock.now(), wait_online);
    services
        .runner
        .wait_online(&command.instance_ids, until)
        .await?;
    match services.runner.send(command).await {
        Ok(id) => {
            services.commands.mark_sent(&guard, &id, expires).await?;
            Ok(id)
        }
        Err(e) => {
            // Refused outright: nothing was sent, the retry may send. Otherwise the outcome
            // is unknown and the guard stays, for the retry to look.
            if !e.is_transient()
                && let Err(release) = services.commands.release_send(&guard, owner).await
            {
                tracing::warn!(error = %release, "could not drop the send guard; it expires");
            }
            Err(e)
        }
    }
}
