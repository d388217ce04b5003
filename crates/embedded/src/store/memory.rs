//! [`MemoryItems`]: an in-memory item table.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

use lifecycle::Fault;

use super::{Change, Item, Items};

/// Items in a `BTreeMap` behind a mutex: the embedded default for tests and simulations.
#[derive(Debug, Default)]
pub struct MemoryItems {
    items: Mutex<BTreeMap<String, Map<String, Value>>>,
}

impl MemoryItems {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Item>>, Fault> {
        self.items
            .lock()
            .map_err(|_| Fault::permanent("in-memory store poisoned by a panic"))
    }
}

impl Items for MemoryItems {
    fn get(&self, id: &str) -> Result<Option<Map<String, Value>>, Fault> {
        Ok(self.lock()?.get(id).cloned())
    }

    fn put(&self, id: &str, item: Map<String, Value>) -> Result<(), Fault> {
        self.lock()?.insert(id.to_owned(), item);
        Ok(())
    }

    fn update(
        &self,
        id: &str,
        change: &mut Change<'_>,
    ) -> Result<Option<Map<String, Value>>, Fault> {
        let mut items = self.lock()?;
        let old = items.get(id).cloned();
        match change(old.as_ref())? {
            Some(new) => {
                items.insert(id.to_owned(), new);
            }
            None => {
                items.remove(id);
            }
        }
        Ok(old)
    }

    fn all(&self) -> Result<Vec<Map<String, Value>>, Fault> {
        Ok(self.lock()?.values().cloned().collect())
    }
}
