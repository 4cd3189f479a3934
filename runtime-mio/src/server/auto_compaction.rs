//! etcd's auto-compaction (`--auto-compaction-mode`, `--auto-compaction-retention`): the
//! leader proposes a compaction of the history older than a retention, as etcd 3.4's
//! compactors do.
//!
//! - **periodic**, retention `R` (a duration): a revision is sampled every `min(R, 1h) / 10`;
//!   once `R` has passed, and then every `min(R, 1h)`, the history before the revision sampled
//!   `R` ago is compacted.
//! - **revision**, retention `N` (revisions): every 5 minutes, the history before
//!   `current - N` is compacted.
//!
//! Revisions are sampled on every member, so a new leader compacts at once what is due; only
//! the leader proposes. Time is an input: the loop passes `now` on its ticks.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tally_kvstore::proto::{CompactionRequest, internal_request};

use super::flags::AutoCompactionConfig;
use super::rpc::Proposer;

/// How often the revision mode compacts (etcd's `revInterval`).
const REVISION_MODE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The periodic mode compacts at most this often, and samples ten times as often.
const PERIODIC_INTERVAL_MAX: Duration = Duration::from_secs(60 * 60);
const SAMPLES_PER_INTERVAL: u32 = 10;

#[derive(Debug)]
pub(super) enum AutoCompactor {
    Off,
    Periodic(Periodic),
    Revision(ByRevision),
}

#[derive(Debug)]
pub(super) struct Periodic {
    retention: Duration,
    sample_interval: Duration,
    /// Revisions sampled over the last `retention`, oldest first.
    samples: VecDeque<i64>,
    samples_max: usize,
    next_sample: Instant,
    last_compacted: Instant,
    /// `retention` until the first compaction, then `min(retention, 1h)`.
    wait: Duration,
}

#[derive(Debug)]
pub(super) struct ByRevision {
    retention: u64,
    next_check: Instant,
    last_revision: i64,
}

impl AutoCompactor {
    pub(super) fn new(config: AutoCompactionConfig, now: Instant, revision: i64) -> Self {
        match config {
            AutoCompactionConfig::Off => AutoCompactor::Off,
            AutoCompactionConfig::Periodic(retention) => {
                assert!(!retention.is_zero(), "a zero retention is Off");
                let interval = retention.min(PERIODIC_INTERVAL_MAX);
                let sample_interval =
                    (interval / SAMPLES_PER_INTERVAL).max(Duration::from_millis(1));
                let samples_max = (retention.as_nanos() / sample_interval.as_nanos()) as usize + 1;
                let mut samples = VecDeque::with_capacity(samples_max.min(1024));
                samples.push_back(revision);
                AutoCompactor::Periodic(Periodic {
                    retention,
                    sample_interval,
                    samples,
                    samples_max,
                    next_sample: now + sample_interval,
                    last_compacted: now,
                    wait: retention,
                })
            }
            AutoCompactionConfig::Revision(retention) => AutoCompactor::Revision(ByRevision {
                retention,
                next_check: now + REVISION_MODE_INTERVAL,
                last_revision: 0,
            }),
        }
    }

    /// Called on every tick with the store's revision: the revision to compact now, if one is
    /// due and this member leads. Report a proposal that went through with
    /// [`proposed`](Self::proposed); one that did not is retried at the next sample.
    pub(super) fn due(&mut self, now: Instant, revision: i64, leader: bool) -> Option<i64> {
        match self {
            AutoCompactor::Off => None,
            AutoCompactor::Periodic(p) => p.due(now, revision, leader),
            AutoCompactor::Revision(r) => r.due(now, revision, leader),
        }
    }

    /// The compaction to `revision` that [`due`](Self::due) gave was proposed.
    pub(super) fn proposed(&mut self, now: Instant, revision: i64) {
        match self {
            AutoCompactor::Off => {}
            AutoCompactor::Periodic(p) => {
                p.last_compacted = now;
                p.wait = p.retention.min(PERIODIC_INTERVAL_MAX);
            }
            AutoCompactor::Revision(r) => r.last_revision = revision,
        }
    }
}

impl AutoCompactor {
    /// Proposes the compaction found due, on the leader (`leader`); called on ticks.
    pub(super) fn compact_if_due(&mut self, writes: &mut Proposer<'_>, leader: bool, now: Instant) {
        let Some(revision) = self.due(now, writes.kv.revision(), leader) else {
            return;
        };
        if revision <= writes.kv.compacted_revision() {
            // Compacted already (an idle store): done, as etcd counts ErrCompacted.
            return self.proposed(now, revision);
        }
        let compaction = internal_request::Request::Compaction(CompactionRequest {
            revision,
            physical: false,
        });
        // Nobody waits for it: a revision compacted meanwhile fails harmlessly at apply.
        if writes.propose_unwaited(compaction).is_ok() {
            self.proposed(now, revision);
            eprintln!("tallyd: auto-compaction: compacting to revision {revision}");
        }
    }
}

impl Periodic {
    fn due(&mut self, now: Instant, revision: i64, leader: bool) -> Option<i64> {
        if now < self.next_sample {
            return None;
        }
        self.next_sample = now + self.sample_interval;
        let oldest = *self.samples.front().expect("at least one sample");
        self.samples.push_back(revision);
        if self.samples.len() > self.samples_max {
            self.samples.pop_front();
        }
        let waited = now.saturating_duration_since(self.last_compacted) >= self.wait;
        // Revision 1 is the empty store's: nothing before it.
        (leader && waited && oldest > 1).then_some(oldest)
    }
}

impl ByRevision {
    fn due(&mut self, now: Instant, revision: i64, leader: bool) -> Option<i64> {
        if now < self.next_check {
            return None;
        }
        self.next_check = now + REVISION_MODE_INTERVAL;
        let retention = i64::try_from(self.retention).unwrap_or(i64::MAX);
        let target = revision.saturating_sub(retention);
        (leader && target > 0 && target != self.last_revision).then_some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's revision in these tests: `BASE` at the start, one more per tick.
    const BASE: i64 = 1000;

    /// Drives `compactor` one `tick` at a time from `from` for `span`; returns (whole seconds
    /// since `start`, revision) of each compaction it proposes.
    fn run(
        compactor: &mut AutoCompactor,
        start: Instant,
        (from, span, tick): (Duration, Duration, Duration),
        leader: bool,
    ) -> Vec<(u64, i64)> {
        let mut compactions = Vec::new();
        let mut at = from;
        while at < from + span {
            at += tick;
            let now = start + at;
            let revision = BASE + (at.as_millis() / tick.as_millis()) as i64;
            if let Some(target) = compactor.due(now, revision, leader) {
                compactor.proposed(now, target);
                compactions.push((at.as_secs(), target));
            }
        }
        compactions
    }

    fn periodic(retention: Duration, start: Instant) -> AutoCompactor {
        AutoCompactor::new(AutoCompactionConfig::Periodic(retention), start, BASE)
    }

    #[test]
    fn periodic_compacts_what_is_older_than_the_retention() {
        let start = Instant::now();
        let tick = Duration::from_millis(100);
        let mut compactor = periodic(Duration::from_secs(10), start);
        let steps = (Duration::ZERO, Duration::from_secs(35), tick);
        let done = run(&mut compactor, start, steps, true);
        // Ten ticks a second: the revision at second t is BASE + 10 t. The first compaction
        // takes the revision of the start, later ones the oldest sample of the window (the
        // retention and one sample interval ago), as etcd's does.
        assert_eq!(done, vec![(10, BASE), (20, BASE + 90), (30, BASE + 190)]);
    }

    #[test]
    fn periodic_retention_over_an_hour_compacts_hourly() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        let mut compactor = periodic(3 * 60 * minute, start);
        let steps = (Duration::ZERO, 5 * 60 * minute + minute, minute);
        let done = run(&mut compactor, start, steps, true);
        let hours: Vec<u64> = done.iter().map(|(at, _)| at / 3600).collect();
        assert_eq!(
            hours,
            vec![3, 4, 5],
            "first after the retention, then every hour"
        );
        // One revision a minute: what is compacted is three hours old, and at most one sample
        // interval (6 minutes) more.
        for (at, revision) in done {
            let age_minutes = at as i64 / 60 - (revision - BASE);
            assert!((180..=186).contains(&age_minutes), "{age_minutes}");
        }
    }

    #[test]
    fn only_the_leader_compacts_and_a_new_one_catches_up_at_once() {
        let start = Instant::now();
        let tick = Duration::from_millis(100);
        let mut compactor = periodic(Duration::from_secs(5), start);
        let span = Duration::from_secs(20);
        assert!(run(&mut compactor, start, (Duration::ZERO, span, tick), false).is_empty());
        let done = run(
            &mut compactor,
            start,
            (span, Duration::from_secs(1), tick),
            true,
        );
        // The next sample (20.5 s) finds it due since long: the window starts at 15 s.
        assert_eq!(done, vec![(20, BASE + 150)]);
    }

    #[test]
    fn revision_mode_keeps_the_last_revisions_every_five_minutes() {
        let start = Instant::now();
        let tick = Duration::from_secs(1);
        let mut compactor = AutoCompactor::new(AutoCompactionConfig::Revision(100), start, BASE);
        let steps = (Duration::ZERO, Duration::from_secs(901), tick);
        let done = run(&mut compactor, start, steps, true);
        assert_eq!(
            done,
            vec![(300, BASE + 200), (600, BASE + 500), (900, BASE + 800)]
        );
        let mut idle = AutoCompactor::new(AutoCompactionConfig::Revision(100), start, 1);
        let later = start + REVISION_MODE_INTERVAL;
        assert_eq!(
            idle.due(later, 50, true),
            None,
            "nothing older than 100 revisions"
        );
        let not_leader = later + REVISION_MODE_INTERVAL;
        assert_eq!(idle.due(not_leader, 150, false), None, "not the leader");
        let again = later + 2 * REVISION_MODE_INTERVAL;
        assert_eq!(idle.due(again, 150, true), Some(50));
        idle.proposed(again, 50);
        let once = again + REVISION_MODE_INTERVAL;
        assert_eq!(idle.due(once, 150, true), None, "the same revision once");
    }

    #[test]
    fn a_refused_proposal_is_retried_at_the_next_sample() {
        let start = Instant::now();
        let mut compactor = periodic(Duration::from_secs(10), start);
        let at = |secs: u64| start + Duration::from_secs(secs);
        for secs in 1..10 {
            assert_eq!(compactor.due(at(secs), BASE, true), None);
        }
        assert_eq!(compactor.due(at(10), BASE + 10, true), Some(BASE));
        // Not reported as proposed (no leader at that moment, say): due again.
        assert_eq!(compactor.due(at(11), BASE + 11, true), Some(BASE));
    }

    #[test]
    fn off_never_compacts() {
        let start = Instant::now();
        let mut compactor = AutoCompactor::new(AutoCompactionConfig::Off, start, 1);
        let day = Duration::from_secs(86_400);
        assert_eq!(compactor.due(start + day, 1_000_000, true), None);
    }
}
