//! Test 1: quickcheck sequences of put, delete, txn, compact, range, lease grant, renew and
//! revoke, and puts attached to leases (and watches, physical compaction steps and snapshot
//! round trips) against the naive model.

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use crate::testing::{EndKind, Harness, Op, TxnOp};

#[derive(Clone, Debug)]
struct Ops(Vec<Op>);

fn end(g: &mut Gen) -> EndKind {
    match u8::arbitrary(g) % 4 {
        0 => EndKind::Single,
        1 => EndKind::Prefix,
        2 => EndKind::To(u8::arbitrary(g)),
        _ => EndKind::FromKey,
    }
}

fn txn_ops(g: &mut Gen) -> Vec<TxnOp> {
    (0..u8::arbitrary(g) % 4)
        .map(|_| match u8::arbitrary(g) % 3 {
            0 => TxnOp::Put {
                key: u8::arbitrary(g),
                value: u8::arbitrary(g) % 4,
            },
            1 => TxnOp::Delete {
                key: u8::arbitrary(g),
                end: end(g),
            },
            _ => TxnOp::Range {
                key: u8::arbitrary(g),
                end: end(g),
            },
        })
        .collect()
}

fn op(g: &mut Gen) -> Op {
    let b = bool::arbitrary(g);
    match u8::arbitrary(g) % 26 {
        0..=5 => Op::Put {
            key: u8::arbitrary(g),
            value: u8::arbitrary(g) % 4,
            prev_kv: b,
        },
        6 | 7 => Op::Delete {
            key: u8::arbitrary(g),
            end: end(g),
            prev_kv: b,
        },
        8..=10 => Op::Range {
            key: u8::arbitrary(g),
            end: end(g),
            rev_back: *g.choose(&[0, 0, 1, 2, 3, 5, 8, 255]).expect("non-empty"),
            limit: u8::arbitrary(g) % 4,
            keys_only: bool::arbitrary(g),
            count_only: u8::arbitrary(g) % 4 == 0,
        },
        11 | 12 => Op::Txn {
            key: u8::arbitrary(g),
            end: end(g),
            target: u8::arbitrary(g) % 4,
            result: u8::arbitrary(g) % 4,
            value: u8::arbitrary(g),
            success: txn_ops(g),
            failure: txn_ops(g),
        },
        13 => Op::Compact {
            rev_back: u8::arbitrary(g) % 6,
        },
        14 => Op::CompactStep {
            budget_keys: u8::arbitrary(g),
        },
        15 => Op::Watch {
            key: u8::arbitrary(g),
            end: end(g),
            start_back: u8::arbitrary(g) % 8,
            prev_kv: b,
            filter: u8::arbitrary(g) % 3,
        },
        16 | 17 => Op::Drain,
        18 => Op::Sync {
            budget: u8::arbitrary(g),
        },
        19 => Op::SnapshotRoundTrip,
        20 => Op::LeaseGrant {
            lease: u8::arbitrary(g),
            // Below the store's minimum TTL now and then, which it raises.
            ttl: u8::arbitrary(g) % 8,
        },
        21 => Op::LeaseRevoke {
            lease: u8::arbitrary(g),
        },
        22 => Op::LeaseRenew {
            lease: u8::arbitrary(g),
        },
        _ => Op::PutWithLease {
            key: u8::arbitrary(g),
            value: u8::arbitrary(g) % 4,
            lease: u8::arbitrary(g),
        },
    }
}

impl Arbitrary for Ops {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % (g.size() + 1);
        Ops((0..n).map(|_| op(g)).collect())
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let v = self.0.clone();
        Box::new((0..v.len()).rev().map(move |i| {
            let mut w = v.clone();
            w.remove(i);
            Ops(w)
        }))
    }
}

fn prop(ops: Ops) -> TestResult {
    match Harness::new().run(&ops.0) {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
}

/// `KVSTORE_QC_TESTS=<n>` runs more cases than the default; `KVSTORE_QC_SIZE=<n>` makes them
/// longer (up to n operations each).
#[test]
fn store_matches_the_naive_model() {
    let tests = std::env::var("KVSTORE_QC_TESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let size = std::env::var("KVSTORE_QC_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    QuickCheck::new()
        .rng(Gen::new(size))
        .tests(tests)
        .quickcheck(prop as fn(Ops) -> TestResult);
}
