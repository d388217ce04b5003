//! Time, injected: a [`Clock`] tells the time and sleeps; a [`Deadline`] bounds every wait.
//!
//! Tests use [`ManualClock`], whose `sleep` advances its own time and returns at once, so no
//! test ever sleeps. Real runtimes provide a clock that sleeps on their executor.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// A source of time that can also wait.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}

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

/// The latest moment by which an invocation must have finished (a Lambda's deadline less a
/// safety margin), or none (the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadline {
    at: Option<SystemTime>,
}

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline { at: None };

    /// A deadline at `at`.
    pub fn at(at: SystemTime) -> Self {
        Deadline { at: Some(at) }
    }

    /// The moment, if any.
    pub fn instant(&self) -> Option<SystemTime> {
        self.at
    }

    /// Time left at `now`; `None` when there is no deadline, zero when it has passed.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.at
            .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// The earlier of this deadline and `now + limit`.
    pub fn min_with(&self, now: SystemTime, limit: Duration) -> SystemTime {
        let by_limit = now + limit;
        match self.at {
            Some(at) if at < by_limit => at,
            _ => by_limit,
        }
    }
}
