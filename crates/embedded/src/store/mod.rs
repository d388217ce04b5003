//! The local store: the runtime's [`NodeStore`](lifecycle_runtime::capability::NodeStore) and
//! [`CommandStore`](lifecycle_runtime::capability::CommandStore) over an embedded table of
//! items ([`Items`]), with the same compare-and-set as DynamoDB's conditional writes.
//!
//! Two backends: [`MemoryItems`] (tests, `lifecycle simulate` without `--store`) and
//! [`FileItems`] (a single redb file, so that consecutive `lifecycle simulate --store FILE`
//! runs resume each other).

mod file;
mod local;
mod memory;

pub use file::FileItems;
pub use local::{Change, Item, Items, LocalStore};
pub use memory::MemoryItems;
