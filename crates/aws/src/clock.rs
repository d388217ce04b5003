//! The wall clock, sleeping on tokio.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use lifecycle_runtime::Clock;

/// System time; `sleep` is `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
