//! [`LocalStore`]: the node and command stores over a synchronous item backend.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use lifecycle::node::{ATTR_IDENT, ATTR_STATUS, ATTR_TYPE, STATUS_NEW, TYPE_COMMAND, ident_of};
use lifecycle::{CommandRecord, Fault, Node};
use lifecycle_runtime::capability::{CommandStore, NodeStore};

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

fn status_of(item: Option<&Map<String, Value>>) -> String {
    item.and_then(|i| i.get(ATTR_STATUS))
        .and_then(Value::as_str)
        .unwrap_or(STATUS_NEW)
        .to_owned()
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
        self.items.put(&node.id, node.to_item())
    }

    async fn set_status(&self, id: &str, expected: &str, new: &str) -> Result<(), Fault> {
        self.items.update(id, &mut |old| {
            let found = status_of(old);
            if found != expected {
                return Err(Fault::Conflict {
                    id: id.to_owned(),
                    expected: expected.to_owned(),
                    found,
                });
            }
            let mut item = old.cloned().unwrap_or_else(|| {
                let mut m = Map::new();
                m.insert(ATTR_IDENT.into(), Value::String(id.to_owned()));
                m
            });
            item.insert(ATTR_STATUS.into(), Value::String(new.to_owned()));
            Ok(Some(item))
        })?;
        Ok(())
    }

    async fn set_properties(&self, id: &str, properties: &Map<String, Value>) -> Result<(), Fault> {
        self.items.update(id, &mut |old| {
            let Some(old) = old else {
                return Err(Fault::MissingNode { id: id.to_owned() });
            };
            let mut item = old.clone();
            for (k, v) in properties {
                if k != ATTR_IDENT && k != ATTR_STATUS {
                    item.insert(k.clone(), v.clone());
                }
            }
            Ok(Some(item))
        })?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), Fault> {
        self.items.update(id, &mut |_| Ok(None))?;
        Ok(())
    }

    async fn by_type(&self, item_type: &str) -> Result<Vec<Node>, Fault> {
        self.items
            .all()?
            .into_iter()
            .filter(|i| i.get(ATTR_TYPE).and_then(Value::as_str) == Some(item_type))
            .map(Node::from_item)
            .collect()
    }
}

#[async_trait]
impl CommandStore for LocalStore {
    async fn put_command(&self, record: &CommandRecord) -> Result<(), Fault> {
        self.items.put(&record.id, record.to_item())
    }

    async fn take_command(&self, id: &str) -> Result<Option<CommandRecord>, Fault> {
        let mut taken = None;
        self.items.update(id, &mut |old| match old {
            None => Ok(None),
            Some(item) if !is_command(item) => Err(Fault::Corrupt {
                id: id.to_owned(),
                reason: "the item is not a command record".into(),
            }),
            Some(item) => {
                taken = Some(CommandRecord::from_item(item)?);
                Ok(None)
            }
        })?;
        Ok(taken)
    }
}
