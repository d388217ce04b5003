//! [`FileItems`]: items in a single redb file.
//!
//! redb is a pure-Rust, ACID, single-file key-value store: no C toolchain, no server, and a
//! write transaction is serializable, which is exactly what a compare-and-set needs. Items are
//! stored as JSON under their `Ident`, so values keep their types.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Map, Value};

use lifecycle::{Fault, FaultKind};

use super::{Change, Items};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("items");

/// Items in one redb file. Opening the same file from two processes at once fails with a
/// clear error (redb holds a lock for the life of the handle).
pub struct FileItems {
    db: Database,
}

impl std::fmt::Debug for FileItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileItems").finish_non_exhaustive()
    }
}

/// A failure of the file: not something a retry mends.
fn backend(context: &str, e: impl std::fmt::Display) -> Fault {
    Fault::Service {
        operation: context.to_owned(),
        code: None,
        status: None,
        message: e.to_string(),
        kind: FaultKind::Permanent,
    }
}

fn decode(id: &str, bytes: &[u8]) -> Result<Map<String, Value>, Fault> {
    serde_json::from_slice(bytes).map_err(|e| Fault::Corrupt {
        id: id.to_owned(),
        reason: format!("stored bytes are not a JSON object: {e}"),
    })
}

fn encode(item: &Map<String, Value>) -> Result<Vec<u8>, Fault> {
    serde_json::to_vec(item).map_err(|e| backend("encoding item", e))
}

impl FileItems {
    /// Opens the store at `path`, creating the file (and its table) when missing.
    ///
    /// # Errors
    /// a [`Fault::Service`] when the file cannot be created or opened, is not a redb file,
    /// or is held open by another process.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Fault> {
        let path = path.as_ref();
        let db = Database::create(path)
            .map_err(|e| backend(&format!("opening store {}", path.display()), e))?;
        let txn = db.begin_write().map_err(|e| backend("begin write", e))?;
        txn.open_table(TABLE)
            .map_err(|e| backend("creating table", e))?;
        txn.commit().map_err(|e| backend("commit", e))?;
        Ok(FileItems { db })
    }
}

impl Items for FileItems {
    fn get(&self, id: &str) -> Result<Option<Map<String, Value>>, Fault> {
        let txn = self.db.begin_read().map_err(|e| backend("begin read", e))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| backend("open table", e))?;
        match table.get(id).map_err(|e| backend("read", e))? {
            Some(bytes) => decode(id, bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    fn put(&self, id: &str, item: Map<String, Value>) -> Result<(), Fault> {
        self.update(id, &mut |_| Ok(Some(item.clone())))?;
        Ok(())
    }

    fn update(
        &self,
        id: &str,
        change: &mut Change<'_>,
    ) -> Result<Option<Map<String, Value>>, Fault> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| backend("begin write", e))?;
        let old = {
            let mut table = txn
                .open_table(TABLE)
                .map_err(|e| backend("open table", e))?;
            let old = match table.get(id).map_err(|e| backend("read", e))? {
                Some(bytes) => Some(decode(id, bytes.value())?),
                None => None,
            };
            // An error from `change` drops the transaction uncommitted: nothing changes.
            match change(old.as_ref())? {
                Some(new) => {
                    let bytes = encode(&new)?;
                    table
                        .insert(id, bytes.as_slice())
                        .map_err(|e| backend("write", e))?;
                }
                None => {
                    table.remove(id).map_err(|e| backend("delete", e))?;
                }
            }
            old
        };
        txn.commit().map_err(|e| backend("commit", e))?;
        Ok(old)
    }

    fn all(&self) -> Result<Vec<Map<String, Value>>, Fault> {
        let txn = self.db.begin_read().map_err(|e| backend("begin read", e))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| backend("open table", e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| backend("scan", e))? {
            let (k, v) = entry.map_err(|e| backend("scan", e))?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }
}
