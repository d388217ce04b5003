//! What the runtime can do in the world, one small trait per capability, each held as
//! `Arc<dyn …>` in [`Services`]: the state table ([`NodeStore`], [`CommandStore`],
//! [`Deliveries`]: their conditional writes are the contract of [`lifecycle::delivery`]), Auto
//! Scaling ([`LifecycleActions`]), SSM ([`CommandRunner`], [`Secrets`]), Route 53 ([`Dns`]),
//! SNS ([`Reporter`]), EC2 ([`Snapshots`]) and time ([`Clock`]).
//!
//! Every method fails with a [`Fault`], whose kind is the one retry policy. Values rendered
//! from templates reach a capability as [`Sensitive`] (SPEC 9): an implementation sends the
//! real text ([`Sensitive::expose`]) to AWS and shows, records or logs only the masked text. The embedded crate
//! implements every trait locally (a store over memory or a file, a recorder of AWS calls);
//! the AWS crate with the AWS SDK for Rust.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use lifecycle::config::declared::RecordAction;
use lifecycle::delivery::{Begin, Claim, Claiming, Lease, NodeWrite, Reservation, Resume};
use lifecycle::event::{LifecycleData, LifecycleResult};
use lifecycle::reconcile::{Hook, Instance};
use lifecycle::{CommandRecord, Fault, Node, Redactor, Sensitive};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::Clock;

/// Nodes in the state table. An invocation claims a node ([`NodeStore::claim`]) before the
/// first side effect — recording a lifecycle event's delivery on the node in the same write
/// — and holds it until its lease ends or its final write releases it; every write of the
/// holder ([`NodeStore::write`]) is a compare-and-set: it succeeds only when the stored
/// status is still the one written last and the lease is still the writer's, and otherwise
/// fails with [`Fault::Conflict`] naming the status found, so two invocations racing on one
/// node cannot both advance it (SPEC 9).
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// Reads one node (a consistent read); `None` when it is not in the table.
    ///
    /// # Errors
    /// [`Fault::Corrupt`] for an item that is not a node; a [`Fault::Service`].
    async fn get(&self, id: &str) -> Result<Option<Node>, Fault>;

    /// Writes a whole node, replacing what was there.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn put(&self, node: &Node) -> Result<(), Fault>;

    /// Claims the node for `lease.owner` until `lease.until`, unless another invocation's
    /// lease is live or the item is a tombstone; `with` a delivery, also begins that delivery
    /// entry on the node, unless another processing of the event is done or under way; `with`
    /// waiting statuses, refuses a node still in cloud-init, writing nothing
    /// ([`lifecycle::delivery::claim`]). A missing node is created bare. Claiming again with
    /// the same owner renews the lease.
    ///
    /// # Errors
    /// [`Fault::Corrupt`] for an item that is not a node; a [`Fault::Service`].
    async fn claim(
        &self,
        id: &str,
        lease: &Lease,
        with: Claiming<'_>,
        now: SystemTime,
    ) -> Result<Claim, Fault>;

    /// One write by the lease holder `owner` ([`lifecycle::delivery::write_node`]): the
    /// state reached, properties, the delivery entry, and — the final write — the release.
    /// Our own earlier write whose response was lost succeeds.
    ///
    /// # Errors
    /// [`Fault::Conflict`] with the status found when it is not the expected one, or the
    /// lease is another's; a [`Fault::Service`].
    async fn write(&self, id: &str, owner: &str, write: &NodeWrite) -> Result<(), Fault>;

    /// Releases `owner`'s lease ([`lifecycle::delivery::release`]); a lease that is not
    /// `owner`'s any more is left alone, and that is not an error.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn release(&self, id: &str, owner: &str) -> Result<(), Fault>;

    /// Sets `ItemStatus` to `new` if it is still `expected` (a missing item counts as `new`,
    /// and is created) and, with an `owner`, the lease is still the owner's
    /// ([`lifecycle::delivery::set_status`]). The owner's own earlier write of the same change
    /// (a lost response) succeeds.
    ///
    /// # Errors
    /// [`Fault::Conflict`] with the status found when it is not `expected`, or the lease is
    /// another's.
    async fn set_status(
        &self,
        id: &str,
        expected: &str,
        new: &str,
        owner: Option<&str>,
    ) -> Result<(), Fault>;

    /// Merges properties into an existing node (never `Ident`/`ItemStatus`).
    ///
    /// # Errors
    /// [`Fault::MissingNode`] when the node does not exist; a [`Fault::Service`].
    async fn set_properties(&self, id: &str, properties: &Map<String, Value>) -> Result<(), Fault>;

    /// Removes a node, leaving a tombstone until `until` ([`lifecycle::delivery::tombstone`])
    /// so a late event does not bring it back; removing a removed or missing node is not an
    /// error.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn remove(&self, id: &str, until: SystemTime) -> Result<(), Fault>;

    /// Every node whose `ItemType` is `item_type`, in key order. A malformed item is logged
    /// and skipped ([`Node::from_query_item`]): another node's bad item never moves the node
    /// being processed (SPEC 9).
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn by_type(&self, item_type: &str) -> Result<Vec<Node>, Fault>;
}

/// Command records and send guards in the state table.
#[async_trait]
pub trait CommandStore: Send + Sync {
    /// Stores a record (replacing one with the same id).
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn put_command(&self, record: &CommandRecord) -> Result<(), Fault>;

    /// Reads a record; `None` when there is none (someone else's command, already consumed,
    /// or past its expiry though not yet deleted by TTL).
    ///
    /// # Errors
    /// [`Fault::Corrupt`] when the item is not a command record; a [`Fault::Service`].
    async fn get_command(&self, id: &str, now: SystemTime) -> Result<Option<CommandRecord>, Fault>;

    /// Consumes a record once the event that read it is processed; consuming a consumed
    /// record is not an error.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn delete_command(&self, id: &str) -> Result<(), Fault>;

    /// Reserves the send of a command by its idempotency key before it is sent
    /// ([`lifecycle::delivery::reserve`]).
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn reserve_send(
        &self,
        key: &str,
        owner: &str,
        expires: SystemTime,
        now: SystemTime,
    ) -> Result<Reservation, Fault>;

    /// Makes a guard found [`Reservation::Unknown`] `owner`'s, once the command it guarded
    /// was looked for and not found.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn take_over_send(
        &self,
        key: &str,
        owner: &str,
        expires: SystemTime,
    ) -> Result<(), Fault>;

    /// Records the command id on a guard: from now on the send is done.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn mark_sent(
        &self,
        key: &str,
        command_id: &str,
        expires: SystemTime,
    ) -> Result<(), Fault>;

    /// Drops `owner`'s guard after SSM refused the send outright: nothing was sent.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn release_send(&self, key: &str, owner: &str) -> Result<(), Fault>;
}

/// Delivery records: recognising an event delivered twice (SPEC 9,
/// [`lifecycle::delivery::begin`]).
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Begins processing the event keyed `key`: [`Begin::Begun`] (or [`Begin::Resume`], when
    /// the expired record it replaced was committing a transition) when it is ours to process
    /// (the record is written in progress until `lease.until`).
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn begin(&self, key: &str, lease: &Lease, now: SystemTime) -> Result<Begin, Fault>;

    /// Marks the event processed, with its outcome, remembered until `expires`; a record
    /// that is not `owner`'s any more is left alone.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn finish(
        &self,
        key: &str,
        owner: &str,
        outcome: &str,
        expires: SystemTime,
    ) -> Result<(), Fault>;

    /// Records on `owner`'s record the transition about to be committed (written before the
    /// state write, so a redelivery after a crash runs the trigger's `after` tasks); a record
    /// that is not `owner`'s any more is left alone.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn mark(&self, key: &str, owner: &str, resume: &Resume) -> Result<(), Fault>;

    /// Gives up `owner`'s record: processing ended retryable, and the retry must run. The
    /// record expires as of `now`; with `keep_resume` it keeps the transition it was
    /// committing, so a retry after the state write runs the trigger's `after` tasks — without
    /// (they all ran), the retry starts afresh ([`lifecycle::delivery::forget`]).
    ///
    /// # Errors
    /// A [`Fault::Service`].
    async fn forget(
        &self,
        key: &str,
        owner: &str,
        now: SystemTime,
        keep_resume: bool,
    ) -> Result<(), Fault>;
}

/// What became of a completion or heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ActionState {
    /// AWS accepted it.
    Done,
    /// AWS says there is no active lifecycle action (already completed, or expired): nothing
    /// to do, and not a failure.
    NoActiveAction,
}

/// An instance of an Auto Scaling group, as `DescribeAutoScalingInstances` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInstance {
    /// The group's name.
    pub group: String,
    /// The lifecycle state: `Pending`, `Pending:Wait`, `InService`, `Terminating:Wait`,
    /// `Warmed:Pending:Wait`, ...
    pub lifecycle_state: String,
}

/// Auto Scaling lifecycle actions and instance protection.
#[async_trait]
pub trait LifecycleActions: Send + Sync {
    /// `CompleteLifecycleAction`, by token when there is one, else by instance id.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn complete(
        &self,
        data: &LifecycleData,
        result: LifecycleResult,
    ) -> Result<ActionState, Fault>;

    /// `RecordLifecycleActionHeartbeat`: keeps a waiting lifecycle action alive.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn heartbeat(&self, data: &LifecycleData) -> Result<ActionState, Fault>;

    /// Waits until the scaling activity of the instance reaches 100 %, at the latest `until`.
    ///
    /// # Errors
    /// A transient [`Fault`] when `until` passes first.
    async fn wait_for_activity(&self, data: &LifecycleData, until: SystemTime)
    -> Result<(), Fault>;

    /// `DescribeLifecycleHooks`: the hook's heartbeat timeout, how long an action waits
    /// without a heartbeat; `None` when the hook is unknown (or the implementation cannot
    /// tell). Implementations may cache it: hooks rarely change.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn heartbeat_timeout(&self, group: &str, hook: &str) -> Result<Option<Duration>, Fault>;

    /// `DescribeAutoScalingInstances`: the group an instance belongs to and its lifecycle
    /// state; `None` when it is in no group (or, for an implementation that cannot know, when
    /// it does not know).
    ///
    /// # Errors
    /// A [`Fault`].
    async fn instance(&self, instance_id: &str) -> Result<Option<GroupInstance>, Fault>;

    /// `DescribeAutoScalingInstances` for several instances at once (paginated, at most 50
    /// ids a call): those that are in a group, with their group and lifecycle state; an id
    /// missing from the answer is in no group. The reconciliation sweep's test of a gone
    /// instance.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn instances(&self, instance_ids: &[String]) -> Result<Vec<Instance>, Fault>;

    /// `DescribeAutoScalingGroups`: every instance of `group` with its lifecycle state.
    ///
    /// # Errors
    /// A permanent [`Fault`] naming the group when there is no such group; a [`Fault`].
    async fn group_instances(&self, group: &str) -> Result<Vec<Instance>, Fault>;

    /// `DescribeLifecycleHooks`: every lifecycle hook of `group`, with its transition,
    /// heartbeat timeout, default result and notification metadata.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn hooks(&self, group: &str) -> Result<Vec<Hook>, Fault>;

    /// `SetInstanceProtection` for scale-in.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn set_protection(
        &self,
        group: &str,
        instance_ids: &[String],
        protected: bool,
    ) -> Result<(), Fault>;
}

/// A shell command to run on instances through SSM.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellCommand {
    /// Target instances.
    pub instance_ids: Vec<String>,
    /// The shell lines; secret values are masked in their shown form.
    pub commands: Vec<Sensitive>,
    /// The comment (at most 100 characters, as SSM allows).
    pub comment: String,
    /// How long the command may run on the instance (SSM's `executionTimeout`); `None`: the
    /// runner's default.
    pub execution_timeout: Option<std::time::Duration>,
    /// A key that is the same when the same task sends the same command for the same event:
    /// lets an implementation recognise a redelivered event.
    pub idempotency_key: String,
}

/// Sending shell commands to instances (SSM Run Command).
#[async_trait]
pub trait CommandRunner: Send + Sync {
    /// Waits until the SSM agent of every instance is online, at the latest `until`.
    ///
    /// # Errors
    /// A transient [`Fault`] when `until` passes first.
    async fn wait_online(&self, instance_ids: &[String], until: SystemTime) -> Result<(), Fault>;

    /// Sends the command, once: an implementation does not retry a send whose outcome is
    /// unknown (SSM has no idempotency token); returns the command id.
    ///
    /// # Errors
    /// A [`Fault`]: a transient one when the send may or may not have happened.
    async fn send(&self, command: &ShellCommand) -> Result<String, Fault>;

    /// The id of a command sent to `instance_ids` with this idempotency key (it travels in
    /// the command's second line), if SSM has one.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn find_sent(&self, instance_ids: &[String], key: &str) -> Result<Option<String>, Fault>;
}

/// One DNS record change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordChange {
    /// UPSERT or DELETE.
    pub action: RecordAction,
    /// Fully qualified name (rendered: secret parts masked in its shown form).
    pub name: Sensitive,
    /// Record type (`A`, `AAAA`, `CNAME`, `TXT`, ...).
    #[serde(rename = "type")]
    pub record_type: String,
    /// TTL in seconds.
    pub ttl: i64,
    /// Values (rendered: secret parts masked in their shown form).
    pub values: Vec<Sensitive>,
}

/// DNS changes (Route 53): one change batch per call.
#[async_trait]
pub trait Dns: Send + Sync {
    /// Applies `changes` to the hosted zone as one batch.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn change(&self, zone_id: &Sensitive, changes: &[RecordChange]) -> Result<(), Fault>;
}

/// Reports (SNS).
#[async_trait]
pub trait Reporter: Send + Sync {
    /// Publishes a message to a topic. The subject and the message are already masked (an SNS
    /// message is shown to its subscribers); only the topic may carry a secret to AWS.
    ///
    /// # Errors
    /// A [`Fault`].
    async fn publish(
        &self,
        topic_arn: &Sensitive,
        subject: &str,
        message: &str,
    ) -> Result<(), Fault>;
}

/// Which volume to snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VolumeRef {
    /// A volume id (`vol-...`): no instance needed (a scheduled event has none).
    Id(Sensitive),
    /// The volume attached to an instance as a device (`/dev/xvdf`), looked up on it.
    Device {
        /// The instance.
        instance_id: String,
        /// The device name.
        device: Sensitive,
    },
}

/// An EBS snapshot to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The volume.
    pub volume: VolumeRef,
    /// The snapshot's description, secrets masked (it is shown to anyone who lists
    /// snapshots).
    pub description: String,
    /// Tags for the snapshot, in order, secrets masked.
    pub tags: Vec<(String, String)>,
}

/// EBS snapshots (EC2).
#[async_trait]
pub trait Snapshots: Send + Sync {
    /// Starts a snapshot of the volume, tagged; returns the snapshot id.
    ///
    /// # Errors
    /// A [`Fault`]; a device the instance does not have is not transient.
    async fn create(&self, request: &SnapshotRequest) -> Result<String, Fault>;

    /// Waits until the snapshot is completed, at the latest `until`.
    ///
    /// # Errors
    /// A transient [`Fault`] when `until` passes first; a permanent one when the snapshot
    /// failed.
    async fn wait_completed(&self, snapshot_id: &str, until: SystemTime) -> Result<(), Fault>;
}

/// Reading secret values (SSM Parameter Store), e.g. a join token into a node property.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The value of parameter `name`, decrypted when `decrypt` (a `SecureString`). The
    /// caller treats a decrypted value as secret.
    ///
    /// # Errors
    /// A [`Fault`]; a missing parameter is [`lifecycle::FaultKind::NotFound`].
    async fn read(&self, name: &Sensitive, decrypt: bool) -> Result<String, Fault>;
}

/// Every capability a task may use, held as shared trait objects.
#[derive(Clone)]
#[non_exhaustive]
pub struct Services {
    /// Nodes.
    pub nodes: Arc<dyn NodeStore>,
    /// Command records and send guards.
    pub commands: Arc<dyn CommandStore>,
    /// Delivery records.
    pub deliveries: Arc<dyn Deliveries>,
    /// Auto Scaling.
    pub lifecycle: Arc<dyn LifecycleActions>,
    /// SSM Run Command.
    pub runner: Arc<dyn CommandRunner>,
    /// Route 53.
    pub dns: Arc<dyn Dns>,
    /// SNS.
    pub reporter: Arc<dyn Reporter>,
    /// SSM Parameter Store.
    pub secrets: Arc<dyn Secrets>,
    /// EBS snapshots; `None` in a build without EC2 support.
    pub snapshots: Option<Arc<dyn Snapshots>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Which properties are secret.
    pub redactor: Redactor,
}

impl Services {
    /// Every capability, with the default redactor. (A struct literal cannot be written
    /// outside this crate: more capabilities will come.)
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        nodes: Arc<dyn NodeStore>,
        commands: Arc<dyn CommandStore>,
        deliveries: Arc<dyn Deliveries>,
        lifecycle: Arc<dyn LifecycleActions>,
        runner: Arc<dyn CommandRunner>,
        dns: Arc<dyn Dns>,
        reporter: Arc<dyn Reporter>,
        secrets: Arc<dyn Secrets>,
        snapshots: Option<Arc<dyn Snapshots>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Services {
            nodes,
            commands,
            deliveries,
            lifecycle,
            runner,
            dns,
            reporter,
            secrets,
            snapshots,
            clock,
            redactor: Redactor::default(),
        }
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}
