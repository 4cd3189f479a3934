//! quickcheck: random sequences of append, overwrite (truncation), snapshot (which purges),
//! snapshot install, hard state, sync and reopen; replay must equal a naive model.

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Append { n: u8, len: u8 },
    Overwrite { back: u8, n: u8, len: u8 },
    Snapshot { back: u8 },
    Install { ahead: u8 },
    HardState { vote: u8 },
    Sync,
    Reopen,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let pick = u8::arbitrary(g) % 16;
        let a = u8::arbitrary(g);
        let b = u8::arbitrary(g);
        match pick {
            0..=5 => Op::Append {
                n: a % 4 + 1,
                len: b % 60,
            },
            6 | 7 => Op::Overwrite {
                back: a,
                n: b % 3 + 1,
                len: a % 40,
            },
            8 => Op::Snapshot { back: a },
            9 => Op::Install { ahead: a % 8 },
            10 => Op::HardState { vote: a % 5 },
            11..=13 => Op::Sync,
            _ => Op::Reopen,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(std::iter::empty())
    }
}

struct Harness {
    fs: MemFs,
    wal: Option<Wal>,
    appended: Model,
    synced: Model,
    term: u64,
}

impl Harness {
    fn wal(&mut self) -> &mut Wal {
        self.wal.as_mut().expect("open")
    }

    fn batch_for(&mut self, op: &Op) -> Option<Batch> {
        let m = &self.appended;
        let (last, _) = m.last();
        let first = m.first();
        let has_entries = !m.entries.is_empty();
        match *op {
            Op::Append { n, len } => Some(Batch::new().with_entries(entries(
                last + 1,
                last + u64::from(n),
                self.term.max(1),
                usize::from(len),
            ))),
            Op::Overwrite { back, n, len } if has_entries => {
                let k = last - u64::from(back) % (last - first + 1);
                self.term += 1;
                Some(Batch::new().with_entries(entries(
                    k,
                    k + u64::from(n) - 1,
                    self.term,
                    usize::from(len),
                )))
            }
            Op::Snapshot { back } if has_entries => {
                let index = last - u64::from(back) % (last - first + 1);
                let term = m.term_at(index).expect("in log");
                Some(Batch::new().with_snapshot(SnapshotMarker::new(index, term)))
            }
            Op::Install { ahead } => {
                self.term += 1;
                Some(
                    Batch::new()
                        .with_snapshot(SnapshotMarker::new(last + 1 + u64::from(ahead), self.term)),
                )
            }
            Op::HardState { vote } => {
                let commit = m.snapshot.map_or(0, |s| s.index());
                Some(Batch::new().with_hard_state(HardState::new(
                    self.term,
                    u64::from(vote),
                    commit,
                )))
            }
            _ => None,
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Sync => {
                let durable = self.wal().sync().map_err(|e| e.to_string())?;
                self.synced = self.appended.clone();
                if (durable.last_index(), durable.last_term()) != self.synced.last() {
                    return Err(format!(
                        "durable {durable:?} vs model {:?}",
                        self.synced.last()
                    ));
                }
                if durable.hard_state() != self.synced.hard_state {
                    return Err("durable hard state differs".into());
                }
            }
            Op::Reopen => {
                // Appended but unsynced batches are lost, like in a crash.
                self.wal = None;
                self.reopen_and_check()?;
            }
            _ => {
                if let Some(batch) = self.batch_for(op) {
                    self.appended.apply(&batch);
                    self.wal().append(batch).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    fn reopen_and_check(&mut self) -> Result<(), String> {
        let (wal, rec) = Wal::open(&dir(), small_config(), Box::new(self.fs.clone()))
            .map_err(|e| e.to_string())?;
        let got = Model::of(&rec);
        if got != self.synced {
            return Err(format!("replay {got:?}\nmodel {:?}", self.synced));
        }
        if wal.last_appended() != self.synced.last() {
            return Err("writer position differs from replay".into());
        }
        self.appended = self.synced.clone();
        self.wal = Some(wal);
        Ok(())
    }
}

fn replay_matches_model(ops: Vec<Op>) -> TestResult {
    let fs = MemFs::new();
    let (wal, _) = open(&fs, small_config());
    let mut h = Harness {
        fs,
        wal: Some(wal),
        appended: Model::default(),
        synced: Model::default(),
        term: 1,
    };
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = h.step(op) {
            return TestResult::error(format!("op {i} {op:?}: {e}"));
        }
    }
    let end = h
        .step(&Op::Sync)
        .and_then(|()| h.step(&Op::Reopen))
        .map(|()| TestResult::passed());
    end.unwrap_or_else(|e| TestResult::error(format!("final check: {e}")))
}

#[test]
fn replay_equals_naive_model() {
    QuickCheck::new()
        .tests(300)
        .rng(Gen::new(120))
        .quickcheck(replay_matches_model as fn(Vec<Op>) -> TestResult);
}

#[test]
fn long_histories_purge_and_replay() {
    // One long deterministic history with many segments, snapshots and purges.
    let mut rng = Rng::new(99);
    let mut g = Gen::new(64);
    let ops: Vec<Op> = (0..3000)
        .map(|_| match rng.below(10) {
            0 => Op::Snapshot {
                back: rng.below(6) as u8,
            },
            1 => Op::Sync,
            2 if rng.below(10) == 0 => Op::Reopen,
            _ => Op::arbitrary(&mut g),
        })
        .collect();
    let result = replay_matches_model(ops);
    assert!(!result.is_failure() && !result.is_error(), "{result:?}");
}
