//! The transport's own source of dial jitter. Seeded from `PeerConfig`, so a test can replay
//! it; not for secrets. The core keeps its PRNG to itself: its randomness is an input it owns,
//! and sharing the type would tie the runtime to the core's choice of generator.

/// xorshift64* (Vigna): a few instructions per draw, full period over non-zero states.
#[derive(Debug, Clone)]
pub(crate) struct Jitter {
    state: u64,
}

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        // The all-zero state is the generator's one fixed point: step off it.
        Jitter {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
        .non_zero()
    }

    fn non_zero(mut self) -> Self {
        if self.state == 0 {
            self.state = 0x2545_F491_4F6C_DD1D;
        }
        self
    }

    /// A value in `[0, bound]`.
    pub(crate) fn up_to(&mut self, bound: u64) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let draw = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        match bound.checked_add(1) {
            Some(modulus) => draw % modulus,
            None => draw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_bounds_and_replay_from_the_seed() {
        let mut a = Jitter::new(7);
        let mut b = Jitter::new(7);
        let mut seen = [false; 11];
        for _ in 0..1000 {
            let draw = a.up_to(10);
            assert_eq!(draw, b.up_to(10));
            seen[draw as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "every value in [0, 10] is drawn");
        assert_eq!(Jitter::new(0).up_to(0), 0);
        let _ = Jitter::new(0x9E37_79B9_7F4A_7C15).up_to(u64::MAX);
    }
}
