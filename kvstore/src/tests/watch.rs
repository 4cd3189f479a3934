//! Test 3: watchers on random ranges receive exactly the model's events, in order, across
//! compaction, including slow ones; plus the watch protocol's corner cases.

use bytes::Bytes;

use super::etcd_examples::put;
use crate::proto::*;
use crate::testing::{EndKind, Harness, Op, TxnOp};
use crate::{KvConfig, KvError, KvStore, WatchId};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u8 {
        (self.next() % n) as u8
    }
    fn end(&mut self) -> EndKind {
        match self.below(4) {
            0 => EndKind::Single,
            1 => EndKind::Prefix,
            2 => EndKind::To(self.below(8)),
            _ => EndKind::FromKey,
        }
    }
}

#[test]
fn many_watchers_get_exactly_the_models_events() {
    for seed in 1..=4u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut ops = Vec::new();
        for i in 0..1_500 {
            let op = match rng.below(100) {
                _ if rng.below(200) == 0 && i > 300 => Op::Compact {
                    rev_back: rng.below(60) + 40,
                },
                0..=44 => Op::Put {
                    key: rng.below(8),
                    value: rng.below(4),
                    prev_kv: false,
                },
                45..=54 => Op::Delete {
                    key: rng.below(8),
                    end: rng.end(),
                    prev_kv: false,
                },
                55..=62 => Op::Txn {
                    key: rng.below(8),
                    end: rng.end(),
                    target: rng.below(4),
                    result: rng.below(4),
                    value: rng.below(4),
                    success: vec![
                        TxnOp::Put {
                            key: rng.below(8),
                            value: 1,
                        },
                        TxnOp::Delete {
                            key: rng.below(8),
                            end: EndKind::Single,
                        },
                    ],
                    failure: vec![TxnOp::Put {
                        key: rng.below(8),
                        value: 2,
                    }],
                },
                63..=72 => Op::Watch {
                    key: rng.below(8),
                    end: rng.end(),
                    start_back: rng.below(8),
                    prev_kv: rng.below(2) == 0,
                    filter: rng.below(3),
                },
                76..=80 => Op::CompactStep {
                    budget_keys: rng.below(4),
                },
                // Draining rarely makes slow watchers: their queues fill and they fall back to
                // catching up from history.
                81..=92 => Op::Drain,
                93..=97 => Op::Sync {
                    budget: rng.below(256),
                },
                _ => Op::Put {
                    key: rng.below(8),
                    value: rng.below(4),
                    prev_kv: false,
                },
            };
            ops.push(op);
        }
        let watchers = ops.iter().filter(|o| matches!(o, Op::Watch { .. })).count();
        assert!(watchers > 100);
        let mut h = Harness::new();
        h.run(&ops).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let (events, compacted) = h.watch_totals();
        eprintln!("seed {seed}: {events} events, {compacted} compacted of {watchers}");
        assert!(events > 3_000, "seed {seed}: only {events} events");
        assert!(
            compacted > 0,
            "seed {seed}: no watcher fell behind a compaction"
        );
    }
}

fn watch(kv: &mut KvStore, key: &str, end: &str, start: i64) -> WatchId {
    kv.watch_create(&WatchCreateRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        range_end: Bytes::copy_from_slice(end.as_bytes()),
        start_revision: start,
        prev_kv: true,
        ..WatchCreateRequest::default()
    })
    .unwrap()
}

fn drain(kv: &mut KvStore) -> Vec<(WatchId, WatchResponse)> {
    let mut out = Vec::new();
    loop {
        while let Some(r) = kv.poll_watch_event() {
            out.push(r);
        }
        if !kv.sync_watchers_step(100) {
            break;
        }
    }
    while let Some(r) = kv.poll_watch_event() {
        out.push(r);
    }
    out
}

#[test]
fn compacted_start_revision_gets_compact_revision() {
    let mut kv = KvStore::new(KvConfig::default());
    for v in ["1", "2", "3", "4"] {
        put(&mut kv, "k", v); // 2..=5
    }
    kv.compact(&CompactionRequest {
        revision: 4,
        physical: false,
    })
    .unwrap();
    while kv.compact_step(10) {}
    let w = watch(&mut kv, "k", "", 3);
    let out = drain(&mut kv);
    assert_eq!(out.len(), 2);
    assert!(out[0].1.created);
    assert_eq!(out[1].0, w);
    assert_eq!((out[1].1.compact_revision, out[1].1.canceled), (4, true));
    assert_eq!(
        kv.watch_cancel(w),
        Err(KvError::WatchNotFound),
        "a compacted watcher is gone"
    );

    // Exactly the compacted revision still replays, as etcd allows.
    let w = watch(&mut kv, "k", "", 4);
    let out = drain(&mut kv);
    let events: Vec<i64> = out
        .iter()
        .filter(|(id, _)| *id == w)
        .flat_map(|(_, r)| r.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision))
        .collect();
    assert_eq!(events, [4, 5]);
}

#[test]
fn delete_at_the_compacted_revision_is_replayed() {
    let mut kv = KvStore::new(KvConfig::default());
    put(&mut kv, "k", "1"); // 2
    kv.delete_range(&DeleteRangeRequest {
        key: Bytes::from_static(b"k"),
        ..DeleteRangeRequest::default()
    })
    .unwrap(); // 3
    kv.compact(&CompactionRequest {
        revision: 3,
        physical: false,
    })
    .unwrap();
    while kv.compact_step(10) {}
    let w = watch(&mut kv, "k", "", 3);
    let out = drain(&mut kv);
    let ev = &out
        .iter()
        .find(|(id, r)| *id == w && !r.events.is_empty())
        .unwrap()
        .1
        .events[0];
    assert_eq!(ev.r#type, EventType::Delete as i32);
    assert_eq!(ev.prev_kv.as_ref().unwrap().value, Bytes::from_static(b"1"));
}

#[test]
fn slow_watcher_never_blocks_apply_and_catches_up() {
    let mut kv = KvStore::new(KvConfig::default().with_watch_pending_events_max(4));
    let w = watch(&mut kv, "k", "\0", 0);
    for i in 0..500 {
        put(&mut kv, &format!("k{}", i % 7), "v");
    }
    // The first batch holds only what fit in the bounded queue.
    let first: Vec<_> = std::iter::from_fn(|| kv.poll_watch_event()).collect();
    let queued: usize = first.iter().map(|(_, r)| r.events.len()).sum();
    assert!(queued <= 4, "{queued}");
    assert!(kv.has_unsynced_watchers());
    let mut revs: Vec<i64> = first
        .iter()
        .flat_map(|(_, r)| r.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision))
        .collect();
    for (id, r) in drain(&mut kv) {
        assert_eq!(id, w);
        revs.extend(r.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision));
    }
    assert_eq!(
        revs,
        (2..=501).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert!(!kv.has_unsynced_watchers());
}

#[test]
fn filters_fragments_cancel_and_progress() {
    let mut kv = KvStore::new(KvConfig::default().with_watch_fragment_bytes_max(64));
    let noput = kv
        .watch_create(&WatchCreateRequest {
            key: Bytes::from_static(b"a"),
            range_end: Bytes::from_static(b"z"),
            filters: vec![FilterType::Noput as i32],
            ..WatchCreateRequest::default()
        })
        .unwrap();
    let frag = kv
        .watch_create(&WatchCreateRequest {
            key: Bytes::from_static(b"a"),
            range_end: Bytes::from_static(b"z"),
            fragment: true,
            ..WatchCreateRequest::default()
        })
        .unwrap();
    drain(&mut kv);
    kv.delete_range(&DeleteRangeRequest {
        key: Bytes::from_static(b"q"),
        ..DeleteRangeRequest::default()
    })
    .unwrap();
    let txn = TxnRequest {
        success: (0..6)
            .map(|i| RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: Bytes::from(format!("key-{i}")),
                    value: Bytes::from(vec![b'x'; 30]),
                    ..PutRequest::default()
                })),
            })
            .collect(),
        ..TxnRequest::default()
    };
    kv.txn(&txn).unwrap();
    kv.delete_range(&DeleteRangeRequest {
        key: Bytes::from_static(b"key-0"),
        ..DeleteRangeRequest::default()
    })
    .unwrap();
    let out = drain(&mut kv);
    let of = |w: WatchId| {
        out.iter()
            .filter(move |(id, _)| *id == w)
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
    };
    let np = of(noput);
    assert_eq!(np.len(), 1);
    assert_eq!(np[0].events.len(), 1);
    assert_eq!(np[0].events[0].r#type, EventType::Delete as i32);
    let fr = of(frag);
    assert!(fr.len() > 2, "six 40-byte events in 64-byte fragments");
    assert!(fr[..fr.len() - 1].iter().all(|r| r.fragment));
    assert!(!fr.last().unwrap().fragment);
    assert_eq!(fr.iter().map(|r| r.events.len()).sum::<usize>(), 7);

    kv.request_progress(noput).unwrap();
    let p = kv.poll_watch_event().unwrap();
    assert_eq!(
        (p.0, p.1.events.len(), p.1.header.unwrap().revision),
        (noput, 0, kv.revision())
    );
    kv.watch_cancel(noput).unwrap();
    let c = kv.poll_watch_event().unwrap();
    assert!(c.1.canceled);
    assert_eq!(kv.watch_cancel(noput), Err(KvError::WatchNotFound));
    assert!(kv.poll_watch_event().is_none());
}

#[test]
fn progress_request_of_a_lagging_watcher_is_answered_once_caught_up() {
    let mut kv = KvStore::new(KvConfig::default());
    put(&mut kv, "other", "1"); // 2
    put(&mut kv, "other", "2"); // 3
    let w = watch(&mut kv, "k", "", 2);
    kv.request_progress(w).unwrap();
    let out = drain(&mut kv);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].1.created);
    assert_eq!((out[1].0, out[1].1.events.len()), (w, 0));
    assert_eq!(out[1].1.header.as_ref().unwrap().revision, 3);
}
