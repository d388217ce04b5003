//! The embedded parts of **autoscaling-lifecycle**: everything that lets the runtime run with
//! no AWS account — `lifecycle simulate`, the examples, and the tests.
//!
//! - [`store`]: the local store, over memory or a redb file, with the same compare-and-set
//!   as DynamoDB's conditional writes;
//! - [`Recorder`]: every AWS capability, recording the call it would make;
//! - [`simulated`]: stand-ins for tasks and conditions a program would register;
//! - [`ManualClock`]: time that moves only when told.
//!
//! The Lambda function links none of this.

mod clock;
mod recorder;
pub mod simulated;
pub mod store;

use std::sync::Arc;

pub use clock::ManualClock;
pub use recorder::{Recorder, derived_id, simulated_parameter};
pub use store::{FileItems, LocalStore, MemoryItems};

use lifecycle_runtime::{Clock, Services};

/// The embedded services: `store` for nodes, command records and delivery records, `recorder` for every AWS
/// capability, and `clock`.
pub fn services(store: LocalStore, recorder: Recorder, clock: Arc<dyn Clock>) -> Services {
    Services::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store),
        Arc::new(recorder.clone()),
        Arc::new(recorder.clone()),
        Arc::new(recorder.clone()),
        Arc::new(recorder.clone()),
        Arc::new(recorder.clone()),
        Some(Arc::new(recorder)),
        clock,
    )
}

/// The sweep reads the whole store.
#[async_trait::async_trait]
impl lifecycle_runtime::sweep::TableItems for LocalStore {
    async fn items(&self) -> Result<Vec<lifecycle::delivery::Item>, lifecycle::Fault> {
        LocalStore::items(self)
    }
}
