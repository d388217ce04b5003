//! Time, injected: a [`Clock`] tells the time and sleeps, and [`poll_until`] is the one way
//! the runtime waits for something — bounded by an instant the caller derives from the
//! invocation's [`lifecycle::Deadline`].
//!
//! Tests use the embedded crate's manual clock, whose `sleep` advances its own time and
//! returns at once, so no test ever sleeps. Real runtimes provide a clock that sleeps on their
//! executor.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// A source of time that can also wait.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);

    /// Waits until `at` (at once when it has passed).
    async fn sleep_until(&self, at: SystemTime) {
        if let Ok(left) = at.duration_since(self.now())
            && !left.is_zero()
        {
            self.sleep(left).await;
        }
    }
}

/// Calls `check` now and then every `interval` until it answers
/// [`ControlFlow::Break`], or `until` passes. Never sleeps past `until`.
///
/// Returns `Ok(Ok(value))` with the `Break` value, or `Ok(Err(pending))` with the last
/// `Continue` value when `until` passed first (the caller says what timing out means).
///
/// # Errors
/// The first error `check` returns.
pub async fn poll_until<B, C, E, F, Fut>(
    clock: &dyn Clock,
    until: SystemTime,
    interval: Duration,
    mut check: F,
) -> Result<Result<B, C>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ControlFlow<B, C>, E>>,
{
    let interval = interval.max(lifecycle::time::MIN_POLL);
    loop {
        let pending = match check().await? {
            ControlFlow::Break(done) => return Ok(Ok(done)),
            ControlFlow::Continue(pending) => pending,
        };
        let now = clock.now();
        if now >= until {
            return Ok(Err(pending));
        }
        let left = until.duration_since(now).unwrap_or_default();
        clock.sleep(interval.min(left)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Time that moves only by sleeping; counts the sleeps.
    struct TestClock(Mutex<(SystemTime, u32)>);

    #[async_trait]
    impl Clock for TestClock {
        fn now(&self) -> SystemTime {
            self.0.lock().map(|t| t.0).unwrap_or(SystemTime::UNIX_EPOCH)
        }
        async fn sleep(&self, duration: Duration) {
            if let Ok(mut t) = self.0.lock() {
                t.0 += duration;
                t.1 += 1;
            }
        }
    }

    fn clock() -> TestClock {
        TestClock(Mutex::new((SystemTime::UNIX_EPOCH, 0)))
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn polls_until_done_without_sleeping_past_the_bound() {
        let c = clock();
        let until = SystemTime::UNIX_EPOCH + Duration::from_secs(12);
        let mut calls = 0;
        let r: Result<Result<u32, u32>, ()> =
            block_on(poll_until(&c, until, Duration::from_secs(5), || {
                calls += 1;
                let n = calls;
                async move {
                    Ok(if n == 3 {
                        ControlFlow::Break(n)
                    } else {
                        ControlFlow::Continue(n)
                    })
                }
            }));
        assert_eq!(r, Ok(Ok(3)));
        assert_eq!(c.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(10));

        // Never done: the last pending value, at the bound exactly (5 + 5 + 2 seconds).
        let c = clock();
        let r: Result<Result<(), &str>, ()> =
            block_on(poll_until(&c, until, Duration::from_secs(5), || async {
                Ok(ControlFlow::Continue("still at 40%"))
            }));
        assert_eq!(r, Ok(Err("still at 40%")));
        assert_eq!(c.now(), until);
        assert_eq!(c.0.lock().unwrap().1, 3);

        // An error ends the wait at once.
        let c = clock();
        let r: Result<Result<(), ()>, &str> =
            block_on(poll_until(&c, until, Duration::from_secs(5), || async {
                Err("throttled")
            }));
        assert_eq!(r, Err("throttled"));
        assert_eq!(c.now(), SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn a_zero_interval_polls_no_faster_than_the_floor() {
        let c = clock();
        let until = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        let r: Result<Result<(), ()>, ()> =
            block_on(poll_until(&c, until, Duration::ZERO, || async {
                Ok(ControlFlow::Continue(()))
            }));
        assert_eq!(r, Ok(Err(())));
        let sleeps = c.0.lock().unwrap().1;
        assert_eq!(
            u128::from(sleeps),
            Duration::from_secs(1).as_millis() / lifecycle::time::MIN_POLL.as_millis()
        );
    }
}
