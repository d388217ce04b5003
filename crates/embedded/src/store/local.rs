//! [`LocalStore`]: the node, command and delivery stores over a synchronous item backend,
//! applying the decisions of [`lifecycle::delivery`] atomically.

use std::sync::Arc;

use std::time::SystemTime;

use async_trait::async_trait;
use serde_json::{Map, Value};

use lifecycle::delivery::{
    self, Begin, Claim, Claiming, Lease, NodeWrite, Reservation, Resume, Written,
};
use lifecycle::node::{
    ATTR_IDENT, ATTR_STATUS, ATTR_TYPE, TYPE_COMMAND, check_properties, ident_of,
};
use lifecycle::{CommandRecord, Fault, Node};
use lifecycle_runtime::capability::{CommandStore, Deliveries, NodeStore};

/// A table item: attribute name → JSON value.
pub type Item = Map<String, Value>;

/// The change [`Items::update`] applies: old item (if any) → new item (`None` deletes).
pub type Change<'a> = dyn FnMut(Option<&Item>) -> Result<Option<Item>, Fault> + 'a;

/// An embedded table of JSON items keyed by `Ident`: the primitive operations the local stores
/// need, each atomic on its own.
pub trait Items: Send + Sync {
    /// Reads one item.
    ///
    /// # Errors
    /// a [`Fault::Service`] on I/O failure.
    fn get(&self, id: &str) -> Result<Option<Map<String, Value>>, Fault>;

    /// Inserts or replaces the item whose `Ident` is `id`.
    ///
    /// # Errors
    /// a [`Fault::Service`] on I/O failure.
    fn put(&self, id: &str, item: Map<String, Value>) -> Result<(), Fault>;

    /// Atomically applies `change` to the item `id` (`None` when absent): the closure returns
    /// the new item (`None` deletes), or an error that aborts the change. Returns the item as
    /// it was before.
    ///
    /// # Errors
    /// Whatever `change` returns; a [`Fault::Service`] on I/O failure.
    fn update(
        &self,
        id: &str,
        change: &mut Change<'_>,
    ) -> Result<Option<Map<String, Value>>, Fault>;

    /// Every item, in key order.
    ///
    /// # Errors
    /// a [`Fault::Service`] on I/O failure.
    fn all(&self) -> Result<Vec<Map<String, Value>>, Fault>;
}

/// Node and command stores over any [`Items`] backend. Cheap to clone.
#[derive(Clone)]
pub struct LocalStore {
    items: Arc<dyn Items>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore").finish_non_exhaustive()
    }
}

impl LocalStore {
    /// A store over `items`.
    pub fn new(items: impl Items + 'static) -> Self {
        LocalStore {
            items: Arc::new(items),
        }
    }

    /// An empty in-memory store.
    pub fn memory() -> Self {
        Self::new(super::MemoryItems::default())
    }

    /// Inserts a raw item as it would appear in the table (seeding from `--nodes`/`--commands`
    /// files). The item must have a string `Ident`.
    ///
    /// # Errors
    /// [`Fault::Corrupt`] when `Ident` is missing or not a string.
    pub fn insert_item(&self, item: Map<String, Value>) -> Result<(), Fault> {
        let id = ident_of(&item)?;
        self.items.put(&id, item)
    }

    /// Drops the delivery record `key` — or, for a lifecycle event, the entry `key` on its
    /// `node` — when [`lifecycle::delivery::may_replay`] allows it, so an operator's replay of
    /// the event runs again; true when it was dropped.
    ///
    /// # Errors
    /// a [`Fault::Service`] on I/O failure.
    pub fn forget_for_replay(
        &self,
        key: &str,
        node: Option<&str>,
        now: SystemTime,
    ) -> Result<bool, Fault> {
        let mut dropped = false;
        if let Some(node) = node {
            self.items.update(
                node,
                &mut |old| match delivery::drop_entry_for_replay(old, key, now) {
                    Some(item) => {
                        dropped = true;
                        Ok(Some(item))
                    }
                    None => Ok(old.cloned()),
                },
            )?;
            return Ok(dropped);
        }
        self.items.update(key, &mut |old| {
            if delivery::may_replay(old, now) {
                dropped = true;
                Ok(None)
            } else {
                Ok(old.cloned())
            }
        })?;
        Ok(dropped)
    }

    /// The item with key `id`, as stored (for inspection and tests).
    ///
    /// # Errors
    /// a [`Fault::Service`] on I/O failure.
    pub fn item(&self, id: &str) -> Result<Option<Map<String, Value>>, Fault> {
        self.items.get(id)
    }

    /// Every item in the store, in key order (for inspection and tests).
    ///
    /// # Errors
    /// a [`Fault::Service`] on I/O failure.
    pub fn items(&self) -> Result<Vec<Map<String, Value>>, Fault> {
        self.items.all()
    }
}

fn is_command(item: &Map<String, Value>) -> bool {
    item.get(ATTR_TYPE).and_then(Value::as_str) == Some(TYPE_COMMAND)
}

/// Applies a decision of [`lifecycle::delivery`] atomically: `decide(old)` gives the new item
/// (`Ok(Some)`), no change (`Ok(None)`), or what stopped it (`Err`).
fn apply<E>(
    items: &dyn Items,
    id: &str,
    mut decide: impl FnMut(Option<&Item>) -> Result<Option<Item>, E>,
) -> Result<Result<(), E>, Fault> {
    let mut refused = None;
    items.update(id, &mut |old| match decide(old) {
        Ok(Some(new)) => Ok(Some(new)),
        Ok(None) => Ok(old.cloned()),
        Err(e) => {
            refused = Some(e);
            Ok(old.cloned())
        }
    })?;
    Ok(refused.map_or(Ok(()), Err))
}

#[async_trait]
impl NodeStore for LocalStore {
    async fn get(&self, id: &str) -> Result<Option<Node>, Fault> {
        match self.items.get(id)? {
            None => Ok(None),
            Some(item) if is_command(&item) => Err(Fault::Corrupt {
                id: id.to_owned(),
                reason: "the item is a command record, not a node".into(),
            }),
            Some(item) => Node::from_item(item).map(Some),
        }
    }

    async fn put(&self, node: &Node) -> Result<(), Fault> {
        check_properties(&node.id, &node.properties)?;
        self.items.put(&node.id, node.to_item())
    }

    async fn claim(
        &self,
        id: &str,
        lease: &Lease,
        with: Claiming<'_>,
        now: SystemTime,
    ) -> Result<Claim, Fault> {
        let mut result = None;
        self.items.update(id, &mut |old| {
            if old.is_some_and(is_command) {
                return Err(Fault::Corrupt {
                    id: id.to_owned(),
                    reason: "the item is a command record, not a node".into(),
                });
            }
            match delivery::claim(id, old, lease, with, now) {
                Ok(claimed) => {
                    let item = claimed.item.clone();
                    result = Some(delivery::claimed(claimed, old.is_some())?);
                    Ok(Some(item))
                }
                Err(refused) => {
                    result = Some(refused);
                    Ok(old.cloned())
                }
            }
        })?;
        result.ok_or_else(|| Fault::permanent("claim: the store applied no change"))
    }

    async fn write(&self, id: &str, owner: &str, write: &NodeWrite) -> Result<(), Fault> {
        check_properties(id, &write.properties)?;
        self.items.update(
            id,
            &mut |old| match delivery::write_node(id, old, owner, write)? {
                Written::Item(item) => Ok(Some(item)),
                Written::Delete => Ok(None),
                Written::Unchanged => Ok(old.cloned()),
            },
        )?;
        Ok(())
    }

    async fn release(&self, id: &str, owner: &str) -> Result<(), Fault> {
        self.items
            .update(id, &mut |old| match delivery::release(old, owner) {
                Ok(new) => Ok(new),
                Err(()) => Ok(old.cloned()),
            })?;
        Ok(())
    }

    async fn set_status(
        &self,
        id: &str,
        expected: &str,
        new: &str,
        owner: Option<&str>,
    ) -> Result<(), Fault> {
        apply(self.items.as_ref(), id, |old| {
            delivery::set_status(id, old, expected, new, owner)
        })?
    }

    async fn set_properties(&self, id: &str, properties: &Map<String, Value>) -> Result<(), Fault> {
        check_properties(id, properties)?;
        self.items.update(id, &mut |old| {
            let Some(old) = old.filter(|o| !delivery::is_tombstone(o)) else {
                return Err(Fault::MissingNode { id: id.to_owned() });
            };
            let mut item = old.clone();
            for (k, v) in properties {
                if k != ATTR_IDENT && k != ATTR_STATUS && !delivery::is_internal(k) {
                    item.insert(k.clone(), v.clone());
                }
            }
            Ok(Some(item))
        })?;
        Ok(())
    }

    async fn remove(&self, id: &str, until: SystemTime) -> Result<(), Fault> {
        self.items.put(id, delivery::tombstone(id, until))
    }

    async fn by_type(&self, item_type: &str) -> Result<Vec<Node>, Fault> {
        Ok(self
            .items
            .all()?
            .into_iter()
            .filter(|i| i.get(ATTR_TYPE).and_then(Value::as_str) == Some(item_type))
            .filter_map(Node::from_query_item)
            .collect())
    }
}

#[async_trait]
impl CommandStore for LocalStore {
    async fn put_command(&self, record: &CommandRecord) -> Result<(), Fault> {
        self.items.put(&record.id, record.to_item())
    }

    async fn get_command(&self, id: &str, now: SystemTime) -> Result<Option<CommandRecord>, Fault> {
        match self.items.get(id)? {
            None => Ok(None),
            Some(item) if !is_command(&item) => Err(Fault::Corrupt {
                id: id.to_owned(),
                reason: "the item is not a command record".into(),
            }),
            Some(item) if delivery::expired(&item, now) => Ok(None),
            Some(item) => CommandRecord::from_item(&item).map(Some),
        }
    }

    async fn delete_command(&self, id: &str) -> Result<(), Fault> {
        self.items.update(id, &mut |old| match old {
            Some(item) if is_command(item) => Ok(None),
            other => Ok(other.cloned()),
        })?;
        Ok(())
    }

    async fn reserve_send(
        &self,
        key: &str,
        owner: &str,
        expires: SystemTime,
        now: SystemTime,
    ) -> Result<Reservation, Fault> {
        let applied = apply(self.items.as_ref(), key, |old| {
            delivery::reserve(key, old, owner, expires, now).map(Some)
        })?;
        Ok(applied.map_or_else(|found| found, |()| Reservation::Fresh))
    }

    async fn take_over_send(
        &self,
        key: &str,
        owner: &str,
        expires: SystemTime,
    ) -> Result<(), Fault> {
        self.items.update(key, &mut |old| {
            Ok(Some(delivery::take_over(old, key, owner, expires)))
        })?;
        Ok(())
    }

    async fn mark_sent(
        &self,
        key: &str,
        command_id: &str,
        expires: SystemTime,
    ) -> Result<(), Fault> {
        self.items.update(key, &mut |old| {
            Ok(Some(delivery::mark_sent(old, key, command_id, expires)))
        })?;
        Ok(())
    }

    async fn release_send(&self, key: &str, owner: &str) -> Result<(), Fault> {
        self.items.update(key, &mut |old| {
            Ok(old
                .filter(|o| {
                    o.get(delivery::ATTR_OWNER).and_then(Value::as_str) != Some(owner)
                        || o.contains_key(delivery::ATTR_COMMAND_ID)
                })
                .cloned())
        })?;
        Ok(())
    }
}

#[async_trait]
impl Deliveries for LocalStore {
    async fn begin(&self, key: &str, lease: &Lease, now: SystemTime) -> Result<Begin, Fault> {
        let mut replaced = None;
        let applied = apply(self.items.as_ref(), key, |old| {
            replaced = old.cloned();
            delivery::begin(key, old, lease, now).map(Some)
        })?;
        Ok(applied.map_or_else(|found| found, |()| delivery::begun(replaced.as_ref())))
    }

    async fn mark(&self, key: &str, owner: &str, resume: &Resume) -> Result<(), Fault> {
        self.items.update(key, &mut |old| {
            Ok(delivery::mark(old, owner, resume).or_else(|| old.cloned()))
        })?;
        Ok(())
    }

    async fn finish(
        &self,
        key: &str,
        owner: &str,
        outcome: &str,
        expires: SystemTime,
    ) -> Result<(), Fault> {
        self.items.update(key, &mut |old| {
            Ok(delivery::finish(old, owner, outcome, expires).or_else(|| old.cloned()))
        })?;
        Ok(())
    }

    async fn forget(
        &self,
        key: &str,
        owner: &str,
        now: SystemTime,
        keep_resume: bool,
    ) -> Result<(), Fault> {
        self.items.update(key, &mut |old| {
            Ok(delivery::forget(old, owner, now, keep_resume).or_else(|| old.cloned()))
        })?;
        Ok(())
    }
}
