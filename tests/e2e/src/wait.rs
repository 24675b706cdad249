//! Waiting for something to happen: poll a condition until it holds or a deadline passes, then
//! fail naming what never happened and what was seen last. Every wait of the tests goes
//! through here, so none depends on a fixed sleep being long enough.
//!
//! A check answers `true`/`false`, `Some(value)`/`None`, or `Ok(value)`/`Err(what it saw)`.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// What a check answers: done (with a value), or not yet (with what it saw, if it says).
pub trait Check {
    /// What the wait returns once the condition holds.
    type Value;
    /// `Ok` when the condition holds; `Err` with what was seen instead (may be empty).
    fn outcome(self) -> Result<Self::Value, String>;
}

impl Check for bool {
    type Value = ();
    fn outcome(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

impl<T> Check for Option<T> {
    type Value = T;
    fn outcome(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

impl<T, E: Display> Check for Result<T, E> {
    type Value = T;
    fn outcome(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// The deadline of one wait, and the failure it ends with.
struct Deadline<'a> {
    what: &'a str,
    at_most: Duration,
    until: Instant,
}

impl<'a> Deadline<'a> {
    fn new(what: &'a str, at_most: Duration) -> Self {
        Deadline {
            what,
            at_most,
            until: Instant::now() + at_most,
        }
    }

    /// Panics once the deadline has passed, with what the last check saw.
    fn check(&self, seen: &str) {
        if Instant::now() >= self.until {
            let seen = if seen.is_empty() {
                String::new()
            } else {
                format!("; last seen: {seen}")
            };
            panic!(
                "timed out after {:?} waiting for {}{seen}",
                self.at_most, self.what
            );
        }
    }
}

/// Polls `check` until it holds and returns its value; panics after `at_most`, naming `what`.
pub async fn wait_until<C, F, Fut>(what: &str, at_most: Duration, mut check: F) -> C::Value
where
    C: Check,
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
{
    let deadline = Deadline::new(what, at_most);
    loop {
        match check().await.outcome() {
            Ok(value) => return value,
            Err(seen) => deadline.check(&seen),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// [`wait_until`] for code outside an async runtime (the stand-in's own tests): blocks the
/// thread between checks.
pub fn wait_until_blocking<C, F>(what: &str, at_most: Duration, mut check: F) -> C::Value
where
    C: Check,
    F: FnMut() -> C,
{
    let deadline = Deadline::new(what, at_most);
    loop {
        match check().outcome() {
            Ok(value) => return value,
            Err(seen) => deadline.check(&seen),
        }
        std::thread::sleep(POLL_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let mut calls = 0;
        let got = wait_until_blocking("the third call", Duration::from_secs(5), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "timed out after 50ms waiting for a badge; last seen: \"2\"")]
    fn fails_naming_what_never_happened_and_what_was_seen() {
        wait_until_blocking("a badge", Duration::from_millis(50), || {
            Err::<(), _>(format!("{:?}", "2"))
        });
    }

    #[tokio::test]
    async fn waits_asynchronously_too() {
        let started = Instant::now();
        wait_until("40 ms to pass", Duration::from_secs(5), || async {
            started.elapsed() >= Duration::from_millis(40)
        })
        .await;
        assert!(started.elapsed() >= Duration::from_millis(40));
    }
}
