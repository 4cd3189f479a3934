//! The WAL thread: group commit, rejections, failures, back-pressure. The wake callback is
//! used as a gate, so the tests control the thread without sleeping.

use std::sync::mpsc;

use super::*;
use crate::wal::{Completion, SubmitError, WalError, WalThread};

/// A wake callback that blocks the WAL thread until the test lets it go.
fn gated() -> (Box<dyn Fn() + Send>, mpsc::Sender<()>) {
    let (tx, rx) = mpsc::channel::<()>();
    (
        Box::new(move || {
            let _ = rx.recv();
        }),
        tx,
    )
}

fn expect_durable(done: &mpsc::Receiver<Completion>) -> crate::wal::Durable {
    match done.recv().expect("completion") {
        Completion::Durable(d) => d,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn everything_queued_is_committed_as_one_group() {
    let fs = MemFs::new();
    let config = small_config()
        .with_segment_bytes(8192)
        .with_batch_bytes_max(2048);
    let (wal, _) = open(&fs, config.clone());
    let (wake, gate) = gated();
    let (mut thread, done) = WalThread::spawn(wal, wake).expect("spawn");
    // Declared after the thread, so a failing assertion drops the gate first and the
    // thread's Drop does not wait forever.
    let gate = gate;
    let mut model = Model::default();

    let first = Batch::new().with_entries(entries(1, 1, 1, 8));
    model.apply(&first);
    assert_eq!(thread.submit(first).expect("submit"), 1);
    assert_eq!(expect_durable(&done).seq(), 1);
    // The thread is now parked in the wake callback: queue nine more batches.
    let writes_before = fs.log().write_starts().len();
    for i in 2..=10 {
        let batch = Batch::new()
            .with_entries(entries(i, i, 1, 8))
            .with_hard_state(HardState::new(1, 1, i - 1));
        model.apply(&batch);
        assert_eq!(thread.try_submit(batch).expect("submit"), i);
    }
    gate.send(()).expect("release");
    let durable = expect_durable(&done);
    assert_eq!(durable.seq(), 10);
    assert_eq!((durable.last_index(), durable.last_term()), (10, 1));
    assert_eq!(durable.hard_state(), Some(HardState::new(1, 1, 9)));
    assert_eq!(
        fs.log().write_starts().len() - writes_before,
        1,
        "nine batches, one write"
    );
    drop(gate);
    let wal = thread.shutdown().expect("thread ran");
    drop(wal);
    let (_, rec) = open(&fs, config);
    assert_eq!(Model::of(&rec), model);
}

#[test]
fn groups_stop_at_batch_bytes_max() {
    let fs = MemFs::new();
    let (wal, _) = open(&fs, small_config());
    let (wake, gate) = gated();
    let (mut thread, done) = WalThread::spawn(wal, wake).expect("spawn");
    let gate = gate;
    thread
        .submit(Batch::new().with_entries(entries(1, 1, 1, 8)))
        .expect("submit");
    assert_eq!(expect_durable(&done).seq(), 1);
    // Each batch encodes to 22 + 39 + 38 = 99 bytes; 512 bytes hold five of them.
    for i in 2..=11 {
        let batch = Batch::new()
            .with_entries(entries(i, i, 1, 8))
            .with_hard_state(HardState::new(1, 1, i - 1));
        assert_eq!(batch.encoded_bytes(), 99);
        thread.try_submit(batch).expect("submit");
    }
    gate.send(()).expect("release");
    assert_eq!(expect_durable(&done).seq(), 6);
    gate.send(()).expect("release");
    assert_eq!(expect_durable(&done).seq(), 11);
}

#[test]
fn full_queue_hands_the_batch_back() {
    let fs = MemFs::new();
    let (wal, _) = open(&fs, small_config());
    let (wake, gate) = gated();
    let (mut thread, done) = WalThread::spawn(wal, wake).expect("spawn");
    let gate = gate;
    thread
        .submit(Batch::new().with_entries(entries(1, 1, 1, 8)))
        .expect("submit");
    expect_durable(&done);
    for i in 2..18 {
        thread
            .try_submit(Batch::new().with_entries(entries(i, i, 1, 8)))
            .expect("room in the queue");
    }
    let batch = Batch::new().with_entries(entries(18, 18, 1, 8));
    match thread.try_submit(batch.clone()) {
        Err(e @ SubmitError::Full(_)) => assert_eq!(e.into_batch(), batch),
        other => panic!("unexpected {other:?}"),
    }
    drop(gate);
    let mut seq = 0;
    while seq < 17 {
        seq = expect_durable(&done).seq();
    }
    assert_eq!(thread.submit(batch).expect("submit"), 18);
    assert_eq!(expect_durable(&done).seq(), 18);
}

#[test]
fn rejected_batches_are_reported_and_skipped() {
    let fs = MemFs::new();
    let (wal, _) = open(&fs, small_config());
    let (mut thread, done) = WalThread::spawn(wal, Box::new(|| {})).expect("spawn");
    let bad = thread
        .submit(Batch::new().with_entries(entries(5, 5, 1, 8)))
        .expect("submit");
    match done.recv().expect("completion") {
        Completion::Rejected {
            seq,
            error: WalError::IndexGap { .. },
        } => assert_eq!(seq, bad),
        other => panic!("unexpected {other:?}"),
    }
    let good = thread
        .submit(Batch::new().with_entries(entries(1, 1, 1, 8)))
        .expect("submit");
    let durable = expect_durable(&done);
    assert_eq!((durable.seq(), durable.last_index()), (good, 1));
}

#[test]
fn io_failure_stops_the_thread_without_acknowledging() {
    let fs = MemFs::new();
    let (wal, _) = open(&fs, small_config());
    let (mut thread, done) = WalThread::spawn(wal, Box::new(|| {})).expect("spawn");
    thread
        .submit(Batch::new().with_entries(entries(1, 1, 1, 8)))
        .expect("submit");
    let durable = expect_durable(&done);
    fs.fail_syncs();
    thread
        .submit(Batch::new().with_entries(entries(2, 2, 1, 8)))
        .expect("submit");
    match done.recv().expect("completion") {
        Completion::Failed(WalError::Io { .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
    let wal = thread.shutdown().expect("thread ran");
    assert!(wal.is_poisoned());
    assert_eq!(wal.durable(), durable);
    assert!(done.recv().is_err(), "nothing after the failure");
}

#[test]
fn a_full_completion_queue_never_blocks_submitters() {
    let fs = MemFs::new();
    let (wal, _) = open(&fs, small_config().with_completion_queue_max(1));
    let (mut thread, done) = WalThread::spawn(wal, Box::new(|| {})).expect("spawn");
    // Nobody drains completions while 100 batches go through a 16-slot queue with blocking
    // submits: the WAL thread must keep going and merge its reports.
    for i in 1..=100 {
        let seq = thread
            .submit(Batch::new().with_entries(entries(i, i, 1, 8)))
            .expect("submit");
        assert_eq!(seq, i);
    }
    let mut seq = 0;
    let mut reports = 0;
    while seq < 100 {
        seq = expect_durable(&done).seq();
        reports += 1;
    }
    assert!(
        reports < 100,
        "reports merge while the queue is full: {reports}"
    );
    let wal = thread.shutdown().expect("thread ran");
    assert_eq!(wal.durable().last_index(), 100);
    drop(wal);
    let (_, rec) = open(&fs, small_config());
    assert_eq!(rec.entries().len(), 100);
}

/// A full disk does not stop the thread: it says so once, keeps what it could not write,
/// queues what comes meanwhile, and writes it all once there is room, then says that too.
#[test]
fn a_full_disk_is_reported_and_waited_out() {
    let fs = MemFs::new();
    let (wal, _) = open(&fs, small_config());
    let (mut thread, done) = WalThread::spawn(wal, Box::new(|| {})).expect("spawn");
    thread
        .submit(Batch::new().with_entries(entries(1, 1, 1, 8)))
        .expect("submit");
    assert_eq!(expect_durable(&done).seq(), 1);

    fs.fail_writes_after(10);
    thread
        .submit(Batch::new().with_entries(entries(2, 3, 1, 50)))
        .expect("submit");
    match done.recv().expect("completion") {
        Completion::OutOfSpace(e) => assert!(e.is_out_of_space(), "{e}"),
        other => panic!("unexpected {other:?}"),
    }
    thread
        .submit(Batch::new().with_entries(entries(4, 4, 1, 8)))
        .expect("submit while full");
    // Still full after several retries: nothing more is reported.
    std::thread::sleep(crate::wal::OUT_OF_SPACE_RETRY * 3);
    assert!(done.try_recv().is_err());
    fs.heal();
    let durable = expect_durable(&done);
    assert_eq!((durable.seq(), durable.last_index()), (3, 4));
    assert!(matches!(
        done.recv().expect("completion"),
        Completion::SpaceRecovered
    ));
    // Back to normal.
    thread
        .submit(Batch::new().with_entries(entries(5, 5, 1, 8)))
        .expect("submit");
    assert_eq!(expect_durable(&done).last_index(), 5);
    drop(thread);
    let (_, rec) = open(&fs, small_config());
    assert_eq!(rec.entries().len(), 5);
}
