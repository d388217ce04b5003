//! [`ManualClock`]: time that moves only when it sleeps or is advanced — deterministic tests
//! and simulations, which never sleep for real.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use lifecycle_runtime::Clock;

/// A clock whose time only moves when it sleeps or is advanced: deterministic tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl Default for ManualClock {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z: a fixed, readable epoch for tests.
        Self::at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }
}

impl ManualClock {
    /// A clock that starts at `start`.
    pub fn at(start: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.now.lock() {
            *now += by;
        }
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.now
            .lock()
            .map(|n| *n)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}
