//! Time as data: a [`Deadline`] bounds every wait (SPEC 6, 8). The core never reads a clock;
//! the driver passes `now` in.

use std::time::{Duration, SystemTime};

/// The shortest interval between two polls of anything: a zero interval must neither spin nor
/// hammer a table or an API.
pub const MIN_POLL: Duration = Duration::from_millis(100);

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

    /// True once `now` is at or past the deadline.
    pub fn passed(&self, now: SystemTime) -> bool {
        self.at.is_some_and(|at| now >= at)
    }

    /// True when the deadline comes before `now + limit`: a wait bounded by both ends at the
    /// deadline.
    pub fn cuts(&self, now: SystemTime, limit: Duration) -> bool {
        self.at.is_some_and(|at| at < now + limit)
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
