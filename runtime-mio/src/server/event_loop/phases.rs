//! Where one loop turn spent its time, for the warning a slow turn logs.

use std::time::{Duration, Instant};

/// At most one slow-turn warning per this interval.
const SLOW_WARNING_INTERVAL: Duration = Duration::from_secs(5);

/// The phases of one turn, each with the time it took.
pub(super) struct Phases {
    started: Instant,
    last: Instant,
    spent: Vec<(&'static str, Duration)>,
}

impl Phases {
    pub(super) fn new(now: Instant) -> Self {
        Phases {
            started: now,
            last: now,
            spent: Vec::with_capacity(8),
        }
    }

    pub(super) fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.spent.push((phase, now - self.last));
        self.last = now;
    }

    fn total(&self) -> Duration {
        self.last - self.started
    }

    fn describe(&self) -> String {
        self.spent
            .iter()
            .map(|(phase, d)| format!("{phase} {} ms", d.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Says where a turn longer than a heartbeat went (it delays every timer and message), at
/// most once per [`SLOW_WARNING_INTERVAL`].
#[derive(Debug, Default)]
pub(super) struct SlowTurnWarning {
    last: Option<Instant>,
}

impl SlowTurnWarning {
    pub(super) fn check(&mut self, phases: &Phases, heartbeat: Duration) {
        let total = phases.total();
        if total < heartbeat
            || self
                .last
                .is_some_and(|at| at.elapsed() < SLOW_WARNING_INTERVAL)
        {
            return;
        }
        self.last = Some(Instant::now());
        eprintln!(
            "tallyd: warning: slow loop turn took {} ms ({})",
            total.as_millis(),
            phases.describe()
        );
    }
}
