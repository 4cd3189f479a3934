//! The ids this member gives what it proposes and asks: store requests (their waiters find
//! their applies by it), ReadIndex rounds, leader queries and lease ids.

use std::time::Instant;

/// The next id of this run.
#[derive(Debug)]
pub(super) struct RequestIds {
    last: u64,
}

impl RequestIds {
    /// Where this run's request IDs start: the member in the top 16 bits, and below them the
    /// wall clock in microseconds. An entry proposed before a restart may be applied after it,
    /// and its ID must not match a waiter of the new run: the new run starts past every ID the
    /// previous one used, unless it issued more than one request per microsecond or the clock
    /// went back.
    pub(super) fn starting_now(member_id: u64) -> Self {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        RequestIds {
            last: ((member_id & 0xffff) << 48) | (micros & ((1 << 48) - 1)),
        }
    }

    pub(super) fn next(&mut self) -> u64 {
        self.last += 1;
        self.last
    }
}

/// Milliseconds since the member started: the lessor's clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    started: Instant,
}

impl Clock {
    pub(super) fn starting_at(started: Instant) -> Self {
        Clock { started }
    }

    pub(super) fn now_ms(self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_member_and_grow() {
        let mut ids = RequestIds::starting_now(0xabcd_1234);
        let first = ids.next();
        assert_eq!(first >> 48, 0x1234);
        assert_eq!(ids.next(), first + 1);
    }
}
