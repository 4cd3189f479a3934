//! The faults of the simulated world, and how they are injected.
//!
//! Besides the network's loss, duplication, delay and partitions and the disks' latency, a
//! world can have:
//! - crashes that lose what was not persisted, and restarts;
//! - clocks that drift and pauses (see `clocks`);
//! - Figure 8 episodes (Raft §5.4.2, Figure 8): for a while, every member that becomes leader
//!   reaches only some of a minority of "witness" members, and crashes right after one or two
//!   of its appends are acknowledged (or within a few ticks), and crashed members restart
//!   soon. Leaders of successive terms thus leave entries of their terms on a few logs each,
//!   and a leader re-replicates an older term's entries and crashes, again and again. While
//!   an episode lasts, the other crashes, the pauses and the partitions stop, so elections
//!   succeed and leaders follow each other quickly;
//! - crashes right after a vote: a member that has just granted its vote crashes and restarts
//!   at once (or in the next tick), and must still remember whom it voted for.

use super::cluster::Cluster;
use crate::message::{Body, Message};
use crate::types::{NodeId, Role};

/// Fault rates of the simulated world. Rates are per mille: per message, per tick (per member
/// for crashes, restarts and pauses) or per vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    pub(super) drop_per_mille: u32,
    pub(super) duplicate_per_mille: u32,
    pub(super) delay_ticks_max: u32,
    pub(super) persist_delay_ticks_max: u32,
    pub(super) crash_per_mille: u32,
    pub(super) restart_per_mille: u32,
    pub(super) partition_per_mille: u32,
    pub(super) heal_per_mille: u32,
    /// Each member's clock runs at a rate drawn from this range, in its ticks per thousand
    /// ticks of the world.
    pub(super) clock_rate_min_per_mille: u32,
    pub(super) clock_rate_max_per_mille: u32,
    pub(super) pause_per_mille: u32,
    /// A leader pauses at this rate instead (the busiest process is the likeliest to stall).
    pub(super) leader_pause_per_mille: u32,
    pub(super) pause_ticks_max: u32,
    pub(super) figure_8_per_mille: u32,
    pub(super) figure_8_ticks: u32,
    pub(super) vote_crash_per_mille: u32,
}

/// A crashed leader of a Figure 8 episode restarts within this many ticks.
const FIGURE_8_RESTART_TICKS_MAX: u64 = 20;

/// A leader of a Figure 8 episode crashes right after it handles the first, or up to this
/// many, acknowledgements of its appends...
const FIGURE_8_ACKS_MAX: u64 = 2;

/// ...or at the latest this many ticks after its first message as leader.
const FIGURE_8_CRASH_TICKS_MAX: u64 = 10;

impl Faults {
    /// A perfect world: no loss, no delay, instant disks, clocks in step.
    pub fn none() -> Self {
        Faults {
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            delay_ticks_max: 0,
            persist_delay_ticks_max: 0,
            crash_per_mille: 0,
            restart_per_mille: 0,
            partition_per_mille: 0,
            heal_per_mille: 0,
            clock_rate_min_per_mille: 1000,
            clock_rate_max_per_mille: 1000,
            pause_per_mille: 0,
            leader_pause_per_mille: 0,
            pause_ticks_max: 0,
            figure_8_per_mille: 0,
            figure_8_ticks: 0,
            vote_crash_per_mille: 0,
        }
    }

    /// A reliable network with latency and slow disks, but no loss, crashes or partitions.
    pub fn latency() -> Self {
        Faults {
            delay_ticks_max: 2,
            persist_delay_ticks_max: 2,
            ..Faults::none()
        }
    }

    /// Everything at once: loss, duplication, reordering, slow disks, crashes, partitions,
    /// clocks from 0.8x to 1.25x, pauses of up to 80 ticks (3 per mille per member and tick,
    /// 10 for a leader), Figure 8 episodes of 300 ticks (10 per mille per tick), and crashes
    /// right after one vote grant in ten.
    pub fn chaos() -> Self {
        Faults {
            drop_per_mille: 50,
            duplicate_per_mille: 30,
            delay_ticks_max: 3,
            persist_delay_ticks_max: 3,
            crash_per_mille: 4,
            restart_per_mille: 60,
            partition_per_mille: 5,
            heal_per_mille: 40,
            clock_rate_min_per_mille: 800,
            clock_rate_max_per_mille: 1250,
            pause_per_mille: 3,
            leader_pause_per_mille: 10,
            pause_ticks_max: 80,
            figure_8_per_mille: 10,
            figure_8_ticks: 300,
            vote_crash_per_mille: 100,
        }
    }

    /// Messages lost, per thousand.
    pub fn with_drop_per_mille(mut self, rate: u32) -> Self {
        self.drop_per_mille = rate;
        self
    }

    /// Each member's clock runs at a rate drawn from `min..=max` ticks per thousand ticks of
    /// the world (1000..=1000 keeps every clock in step).
    pub fn with_clock_rates_per_mille(mut self, min: u32, max: u32) -> Self {
        assert!(
            0 < min && min <= max && max <= 4000,
            "clock rates {min}..={max} per mille: 0 < min <= max <= 4000"
        );
        self.clock_rate_min_per_mille = min;
        self.clock_rate_max_per_mille = max;
        self
    }

    /// Each running member pauses with probability `rate` per mille per tick (`leader_rate`
    /// while it leads), for 1 to `ticks_max` ticks of the world.
    pub fn with_pauses(mut self, rate: u32, leader_rate: u32, ticks_max: u32) -> Self {
        assert!(
            (rate == 0 && leader_rate == 0) || ticks_max > 0,
            "a pause lasts at least one tick"
        );
        self.pause_per_mille = rate;
        self.leader_pause_per_mille = leader_rate;
        self.pause_ticks_max = ticks_max;
        self
    }

    /// A Figure 8 episode of `ticks` ticks starts with probability `rate` per mille per tick
    /// (when none is under way).
    pub fn with_figure_8(mut self, rate: u32, ticks: u32) -> Self {
        self.figure_8_per_mille = rate;
        self.figure_8_ticks = ticks;
        self
    }

    /// A member that grants its vote crashes and restarts at once with probability `rate` per
    /// mille.
    pub fn with_vote_crash_per_mille(mut self, rate: u32) -> Self {
        self.vote_crash_per_mille = rate;
        self
    }

    pub(super) fn clock_rate_range(&self) -> (u32, u32) {
        (self.clock_rate_min_per_mille, self.clock_rate_max_per_mille)
    }
}

/// What a Figure 8 episode does to a leader: in its term its messages reach only some
/// members, and it crashes right after a given number of acknowledgements of its appends, or
/// at a given tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LeaderFate {
    term: u64,
    /// The members its messages reach, as a bit set by id.
    reaches: u16,
    acks_left: u64,
    crash_at: u64,
}

impl LeaderFate {
    fn reaches(&self, id: NodeId) -> bool {
        self.reaches & (1 << id) != 0
    }
}

impl Cluster {
    /// The faults of one tick, before messages move and clocks tick.
    pub(super) fn inject_faults(&mut self) {
        let faults = self.config.faults;
        let now = self.now;
        self.resume_due();
        if !self.in_figure_8() && self.rng.chance(faults.figure_8_per_mille) {
            // The episode's own crashes and restarts replace the other crashes, pauses and
            // partitions while it lasts, so elections succeed and leaders follow each other.
            self.figure_8_until = now + u64::from(faults.figure_8_ticks);
            // One witness, or up to a minority of the members.
            let members = self.members.len() as u64;
            let count = 1 + self.rng.below(((members - 1) / 2).max(1));
            let mut witnesses = 0u16;
            while u64::from(witnesses.count_ones()) < count {
                witnesses |= 1 << (self.rng.below(members) + 1);
            }
            self.figure_8_witnesses = witnesses;
            self.heal();
        }
        let figure_8 = self.in_figure_8();
        for id in self.member_ids() {
            let member = self.member(id);
            let (up, paused) = (member.node.is_some(), member.clock.is_paused());
            let leads = member
                .node
                .as_ref()
                .is_some_and(|node| node.status().role() == Role::Leader);
            let pause_rate = if leads {
                faults.leader_pause_per_mille
            } else {
                faults.pause_per_mille
            };
            let doomed = member.fate.is_some_and(|fate| fate.crash_at <= now);
            let restart_due = member.restart_at.is_some_and(|at| at <= now);
            if up {
                if doomed {
                    let delay = 1 + self.rng.below(FIGURE_8_RESTART_TICKS_MAX);
                    self.crash_and_restart_in(id, delay);
                } else if !figure_8 && self.rng.chance(faults.crash_per_mille) {
                    self.crash(id);
                } else if !figure_8 && !paused && self.rng.chance(pause_rate) {
                    let ticks = 1 + self.rng.below(u64::from(faults.pause_ticks_max));
                    self.pause(id, ticks);
                }
            } else if restart_due || self.rng.chance(faults.restart_per_mille) {
                self.restart(id);
            }
        }
        if figure_8 {
            return;
        }
        if self.rng.chance(faults.partition_per_mille) {
            for slot in 0..self.groups.len() {
                self.groups[slot] = (self.rng.below(2)) as u8;
            }
        } else if self.rng.chance(faults.heal_per_mille) {
            self.heal();
        }
    }

    /// Whether a Figure 8 episode is under way.
    pub fn in_figure_8(&self) -> bool {
        self.now < self.figure_8_until
    }

    /// Ends a Figure 8 episode and cancels the leader crashes it scheduled.
    pub(super) fn end_figure_8(&mut self) {
        self.figure_8_until = self.now;
        for member in &mut self.members {
            member.fate = None;
        }
    }

    /// Whether `message` leaves its sender: a leader of a Figure 8 episode reaches only the
    /// members its fate names. The fate is drawn at its first message as leader.
    pub(super) fn leader_fate_lets_through(&mut self, message: &Message) -> bool {
        let from = message.from();
        if let Some(fate) = self.member(from).fate {
            if fate.term == message.term() {
                return fate.reaches(message.to());
            }
        }
        if !self.in_figure_8() {
            return true;
        }
        let leads = self
            .status(from)
            .is_some_and(|status| status.role() == Role::Leader && status.term() == message.term());
        if !leads {
            return true;
        }
        // Some of the episode's witnesses: with the leader, never more than a bare majority.
        let members = self.members.len() as u64;
        let witnesses = self.figure_8_witnesses & !(1 << from);
        let mut reaches = 0u16;
        let count = self
            .rng
            .below(members / 2 + 1)
            .min(u64::from(witnesses.count_ones()));
        while u64::from(reaches.count_ones()) < count {
            let pick = self.rng.below(members) + 1;
            if witnesses & (1 << pick) != 0 {
                reaches |= 1 << pick;
            }
        }
        let acks_left = 1 + self.rng.below(FIGURE_8_ACKS_MAX);
        let crash_at = self.now + 1 + self.rng.below(FIGURE_8_CRASH_TICKS_MAX);
        let fate = LeaderFate {
            term: message.term(),
            reaches,
            acks_left,
            crash_at,
        };
        self.member_mut(from).fate = Some(fate);
        fate.reaches(message.to())
    }

    /// Before member `to` handles `message`: the acknowledgement its fate waits for dooms it
    /// to crash once it has handled it.
    pub(super) fn note_append_ack(&mut self, to: NodeId, message: &Message) {
        if !matches!(message.body, Body::AppendResp { reject: false, .. }) {
            return;
        }
        let member = self.member_mut(to);
        let Some(fate) = member.fate.as_mut() else {
            return;
        };
        if fate.term != message.term() || fate.acks_left == 0 {
            return;
        }
        fate.acks_left -= 1;
        if fate.acks_left == 0 {
            self.doom_after_step(to);
        }
    }

    /// Member `id` crashes once its current step is done, and restarts within
    /// `FIGURE_8_RESTART_TICKS_MAX` ticks.
    fn doom_after_step(&mut self, id: NodeId) {
        let delay = 1 + self.rng.below(FIGURE_8_RESTART_TICKS_MAX);
        self.member_mut(id).crash_after_step = Some(delay);
    }

    /// A vote grant may doom its sender to crash once its current step is done.
    pub(super) fn note_vote_grant(&mut self, message: &Message) {
        let faults = self.config.faults;
        if matches!(message.body, Body::VoteResp { reject: false })
            && self.rng.chance(faults.vote_crash_per_mille)
        {
            // Back at once, or in the next tick.
            let delay = self.rng.below(2);
            self.member_mut(message.from()).crash_after_step = Some(delay);
        }
    }

    /// After member `id`'s step: the crash a fault doomed it to.
    pub(super) fn after_step(&mut self, id: NodeId) {
        if let Some(delay) = self.member_mut(id).crash_after_step.take() {
            self.crash_and_restart_in(id, delay);
        }
    }

    /// Crashes member `id` and restarts it `delay` ticks later (0: at once).
    fn crash_and_restart_in(&mut self, id: NodeId, delay: u64) {
        self.crash(id);
        if delay == 0 {
            self.restart(id);
        } else {
            self.member_mut(id).restart_at = Some(self.now + delay);
        }
    }
}
