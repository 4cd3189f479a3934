//! Reconnect backoff: exponential, capped, with seeded jitter.

use std::time::Duration;

use super::jitter::Jitter;

/// Delay before the next dial: `min(backoff_max_ms, backoff_min_ms * 2^failures)`, of which a
/// random upper half is taken ("equal jitter"), so restarted members do not dial in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    failures: u32,
    min_ms: u64,
    max_ms: u64,
}

impl Backoff {
    pub(crate) fn new(min_ms: u64, max_ms: u64) -> Self {
        assert!(min_ms >= 1 && max_ms >= min_ms);
        Backoff {
            failures: 0,
            min_ms,
            max_ms,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn next_delay(&mut self, jitter: &mut Jitter) -> Duration {
        let factor = 1u64.checked_shl(self.failures.min(62)).unwrap_or(u64::MAX);
        let ceiling = self.min_ms.saturating_mul(factor).min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        Duration::from_millis(half + jitter.up_to(ceiling - half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut rng = Jitter::new(7);
        let mut backoff = Backoff::new(10, 1000);
        let mut previous_ceiling = 0;
        for failure in 0..20u32 {
            let ceiling = (10u64 << failure.min(40)).min(1000);
            let delay = backoff.next_delay(&mut rng).as_millis() as u64;
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{failure}: {delay}"
            );
            assert!(ceiling >= previous_ceiling);
            previous_ceiling = ceiling;
        }
        backoff.reset();
        let delay = backoff.next_delay(&mut rng).as_millis() as u64;
        assert!((5..=10).contains(&delay));
    }
}
