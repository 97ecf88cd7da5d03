//! Bounded exponential backoff with jitter, shared by the IMDS client and the waits.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Delays grow from `initial` by doubling up to `max`; nothing is retried after `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub deadline: Duration,
}

impl Backoff {
    pub fn new(deadline: Duration) -> Self {
        Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(8), deadline }
    }

    pub fn start(self) -> Attempts {
        Attempts { policy: self, started: Instant::now(), next: self.initial, seed: seed() }
    }
}

/// The state of one retried operation.
pub struct Attempts {
    policy: Backoff,
    started: Instant,
    next: Duration,
    seed: u64,
}

impl Attempts {
    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.policy.deadline.saturating_sub(self.started.elapsed())
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The next pause (jittered to 50–100 % of the nominal delay, capped by the time left), or
    /// `None` when the deadline has passed.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let left = self.remaining();
        if left.is_zero() {
            return None;
        }
        let nominal = self.next;
        self.next = (self.next * 2).min(self.policy.max);
        self.seed = xorshift(self.seed);
        let fraction = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        Some(nominal.mul_f64(fraction).min(left))
    }

    /// Sleep for the next delay; false when the deadline has passed.
    pub fn wait(&mut self) -> bool {
        match self.next_delay() {
            Some(d) => {
                std::thread::sleep(d);
                true
            }
            None => false,
        }
    }
}

/// HTTP statuses IMDS documents as transient: throttling, "updating" and server errors.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 410 | 429) || (500..=599).contains(&status)
}

fn seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(1);
    (nanos as u64) ^ (u64::from(std::process::id()) << 32) | 1
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses_follow_the_imds_documentation() {
        for s in [410, 429, 500, 503, 599] {
            assert!(is_retryable(s), "{s}");
        }
        for s in [200, 400, 403, 404, 405] {
            assert!(!is_retryable(s), "{s}");
        }
    }

    #[test]
    fn delays_grow_are_jittered_and_capped() {
        let policy = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            deadline: Duration::from_secs(60),
        };
        let mut a = policy.start();
        let d: Vec<Duration> = (0..5).map(|_| a.next_delay().unwrap()).collect();
        let nominal = [100, 200, 400, 400, 400];
        for (got, n) in d.iter().zip(nominal) {
            let n = Duration::from_millis(n);
            assert!(*got >= n / 2 && *got <= n, "{got:?} outside [{:?}, {n:?}]", n / 2);
        }
    }

    #[test]
    fn no_delay_after_the_deadline() {
        let mut a = Backoff::new(Duration::ZERO).start();
        assert_eq!(a.next_delay(), None);
        assert!(!a.wait());
    }
}
