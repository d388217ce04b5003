//! [`MemoryItems`]: an in-memory item table.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::{Change, Item, Items, StoreError};

/// Items in a `BTreeMap` behind a mutex: the embedded default for tests and simulations.
#[derive(Debug, Default)]
pub struct MemoryItems {
    items: Mutex<BTreeMap<String, Map<String, Value>>>,
}

impl MemoryItems {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Item>>, StoreError> {
        self.items.lock().map_err(|_| StoreError::Backend {
            message: "in-memory store poisoned by a panic".into(),
            retryable: false,
        })
    }
}

impl Items for MemoryItems {
    fn get(&self, id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        Ok(self.lock()?.get(id).cloned())
    }

    fn put(&self, id: &str, item: Map<String, Value>) -> Result<(), StoreError> {
        self.lock()?.insert(id.to_owned(), item);
        Ok(())
    }

    fn update(
        &self,
        id: &str,
        change: &mut Change<'_>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
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

    fn all(&self) -> Result<Vec<Map<String, Value>>, StoreError> {
        Ok(self.lock()?.values().cloned().collect())
    }
}
