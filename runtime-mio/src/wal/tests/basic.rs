//! Writer behaviour: append vs. durable, limits, index checks, I/O errors, rolling, purging.

use super::*;
use crate::wal::{Durable, WalError};

#[test]
fn empty_directory_opens_empty() {
    let fs = MemFs::new();
    let (wal, rec) = open(&fs, small_config());
    assert_eq!(Model::of(&rec), Model::default());
    assert_eq!(wal.segment_seqs(), vec![1]);
    assert_eq!(wal.durable().last_index(), 0);
    // The segment is preallocated to its full size.
    assert_eq!(fs.file(&segment_path(1)).map(|f| f.len()), Some(1024));
}

#[test]
fn appended_is_not_durable_until_sync() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let written = fs.written_bytes();
    let seq = wal
        .append(Batch::new().with_entries(entries(1, 2, 1, 5)))
        .expect("append");
    assert_eq!(seq, 1);
    assert_eq!(wal.last_appended(), (2, 1));
    assert_eq!(wal.durable().last_index(), 0);
    assert_eq!(fs.written_bytes(), written, "append must not write");
    let seq2 = wal
        .append(Batch::new().with_hard_state(HardState::new(1, 1, 2)))
        .expect("append");
    let durable: Durable = wal.sync().expect("sync");
    assert_eq!(durable.seq(), seq2);
    assert_eq!((durable.last_index(), durable.last_term()), (2, 1));
    assert_eq!(durable.hard_state(), Some(HardState::new(1, 1, 2)));
    // Both batches went out in a single write.
    let writes = fs.log().write_starts().len();
    assert_eq!(
        fs.written_bytes() - written,
        fs.log().written_bytes() - written
    );
    assert_eq!(
        writes, 3,
        "preallocation (header, zeros) plus one batch write"
    );
}

#[test]
fn reopen_replays_everything() {
    let fs = MemFs::new();
    let mut model = Model::default();
    {
        let (mut wal, _) = open(&fs, small_config());
        for group in super::crash::workload() {
            for batch in group {
                model.apply(&batch);
                wal.append(batch).expect("append");
            }
            wal.sync().expect("sync");
        }
    }
    let (wal, rec) = open(&fs, small_config());
    assert_eq!(Model::of(&rec), model);
    assert_eq!(rec.report().truncated_bytes(), 0);
    assert_eq!(wal.last_appended(), model.last());
}

#[test]
fn limits_are_typed_errors() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let big = vec![Entry::new(
        1,
        1,
        EntryKind::Normal,
        Bytes::from(vec![7u8; 300]),
    )];
    assert!(matches!(
        wal.append(Batch::new().with_entries(big)),
        Err(WalError::RecordTooLarge { max: 256, .. })
    ));
    assert!(matches!(
        wal.append(Batch::new().with_entries(entries(1, 10, 1, 100))),
        Err(WalError::BatchTooLarge { max: 512, .. })
    ));
    assert!(matches!(
        wal.append(Batch::new().with_entries(entries(2, 3, 1, 1))),
        Err(WalError::IndexGap {
            next_max: 1,
            got: 2
        })
    ));
    let mut gap = entries(1, 2, 1, 1);
    gap.extend(entries(4, 4, 1, 1));
    assert!(matches!(
        wal.append(Batch::new().with_entries(gap)),
        Err(WalError::NonContiguous {
            previous: 2,
            got: 4
        })
    ));
    wal.write(
        Batch::new()
            .with_entries(entries(1, 5, 1, 1))
            .with_snapshot(SnapshotMarker::new(0, 0)),
    )
    .expect("write");
    wal.write(Batch::new().with_snapshot(SnapshotMarker::new(3, 1)))
        .expect("write");
    assert!(matches!(
        wal.append(Batch::new().with_entries(entries(3, 3, 2, 1))),
        Err(WalError::IndexCompacted {
            snapshot_index: 3,
            got: 3
        })
    ));
    assert!(matches!(
        wal.append(Batch::new().with_snapshot(SnapshotMarker::new(2, 1))),
        Err(WalError::SnapshotRegression { .. })
    ));
    assert!(matches!(
        WalConfig::default().with_segment_bytes(1 << 33).validate(),
        Err(WalError::InvalidConfig(_))
    ));
    assert!(
        Wal::open(
            &dir(),
            WalConfig::default().with_segment_bytes(4096),
            Box::new(fs.clone())
        )
        .is_err(),
        "segment_bytes smaller than batch_bytes_max is refused"
    );
    // Rejected batches changed nothing.
    drop(wal);
    let (_, rec) = open(&fs, small_config());
    assert_eq!(rec.entries().len(), 2);
    assert_eq!(rec.snapshot(), Some(SnapshotMarker::new(3, 1)));
}

/// The files in the WAL directory whose names end with `.tmp`.
fn tmp_files(fs: &MemFs) -> Vec<String> {
    use crate::wal::Fs as _;
    fs.list_dir(&dir())
        .expect("list")
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

#[test]
fn disk_full_during_a_write_acknowledges_nothing_and_loses_nothing() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let first = wal
        .write(Batch::new().with_entries(entries(1, 2, 1, 10)))
        .expect("write");
    wal.append(Batch::new().with_entries(entries(3, 5, 1, 50)))
        .expect("append");
    fs.fail_writes_after(40);
    let err = wal.sync().expect_err("disk full");
    match &err {
        WalError::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_out_of_space());
    assert_eq!(wal.durable(), first, "nothing new is durable");
    assert!(!wal.is_poisoned(), "a full disk is not a broken one");
    // Still full: the same answer, and nothing is lost from the queue.
    assert!(wal.sync().expect_err("still full").is_out_of_space());
    assert_eq!(wal.durable(), first);
    // A crash now: only what was acknowledged comes back, the half-written tail is cut.
    drop(wal);
    fs.heal();
    let (_, rec) = open(&fs, small_config());
    assert_eq!(rec.entries(), &entries(1, 2, 1, 10)[..]);
    assert!(rec.report().truncated_bytes() > 0);
}

#[test]
fn a_write_refused_by_a_full_disk_is_written_again_once_there_is_room() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    wal.write(Batch::new().with_entries(entries(1, 2, 1, 10)))
        .expect("write");
    wal.append(Batch::new().with_entries(entries(3, 5, 1, 50)))
        .expect("append");
    fs.fail_writes_after(40);
    assert!(wal.sync().expect_err("disk full").is_out_of_space());
    // Batches appended while the disk is full queue behind the refused one.
    wal.append(
        Batch::new()
            .with_entries(entries(6, 6, 1, 20))
            .with_hard_state(HardState::new(1, 1, 6)),
    )
    .expect("append while full");
    fs.heal();
    let durable = wal.sync().expect("room again");
    assert_eq!((durable.last_index(), durable.last_term()), (6, 1));
    assert_eq!(durable.hard_state(), Some(HardState::new(1, 1, 6)));
    drop(wal);
    let (_, rec) = open(&fs, small_config());
    let mut expected = entries(1, 2, 1, 10);
    expected.extend(entries(3, 5, 1, 50));
    expected.extend(entries(6, 6, 1, 20));
    assert_eq!(rec.entries(), &expected[..]);
    assert_eq!(rec.report().truncated_bytes(), 0);
}

#[test]
fn failed_fdatasync_acknowledges_nothing() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let first = wal
        .write(Batch::new().with_entries(entries(1, 1, 1, 10)))
        .expect("write");
    fs.fail_syncs();
    wal.append(Batch::new().with_entries(entries(2, 2, 1, 10)))
        .expect("append");
    assert!(matches!(wal.sync(), Err(WalError::Io { .. })));
    assert_eq!(wal.durable(), first);
    assert!(wal.is_poisoned());
}

/// Appends two-entry batches, each synced, until one needs the next segment and its creation
/// meets a full disk (the disk stays full). The last index written before that.
fn fill_until_a_roll_fails(fs: &MemFs, wal: &mut Wal) -> u64 {
    let mut last = 0;
    loop {
        let before = wal.durable();
        wal.append(Batch::new().with_entries(entries(last + 1, last + 2, 1, 100)))
            .expect("append");
        fs.fail_writes_after(300);
        match wal.sync() {
            Ok(_) => {
                fs.heal();
                last += 2;
            }
            Err(e) => {
                assert!(e.is_out_of_space(), "{e}");
                assert_eq!(wal.durable(), before);
                assert!(!wal.is_poisoned());
                return last;
            }
        }
    }
}

#[test]
fn disk_full_while_rolling_a_segment() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let last = fill_until_a_roll_fails(&fs, &mut wal);
    // The half-made segment gave its space back at once.
    assert_eq!(tmp_files(&fs), Vec::<String>::new());
    fs.heal();
    drop(wal);
    let (mut wal, rec) = open(&fs, small_config());
    assert_eq!(rec.entries().last().map(Entry::index), Some(last));
    assert_eq!(rec.report().removed_tmp_files(), 0);
    wal.write(Batch::new().with_entries(entries(last + 1, last + 2, 1, 100)))
        .expect("write after recovery");
    assert_eq!(wal.segment_seqs(), vec![1, 2]);
}

#[test]
fn a_roll_refused_by_a_full_disk_is_done_again_once_there_is_room() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let last = fill_until_a_roll_fails(&fs, &mut wal);
    // Still full: refused again, without a trace.
    assert!(wal.sync().expect_err("still full").is_out_of_space());
    fs.heal();
    let durable = wal.sync().expect("room again");
    assert_eq!(durable.last_index(), last + 2);
    assert_eq!(wal.segment_seqs(), vec![1, 2]);
    wal.write(Batch::new().with_entries(entries(last + 3, last + 4, 1, 100)))
        .expect("write");
    drop(wal);
    // The new segment opens with its head records: purging the first loses nothing.
    let (_, rec) = open(&fs, small_config());
    let indexes: Vec<u64> = rec.entries().iter().map(Entry::index).collect();
    assert_eq!(indexes, (1..=last + 4).collect::<Vec<_>>());
}

#[test]
fn segments_roll_and_are_purged_after_a_snapshot() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let mut model = Model::default();
    let mut index = 0;
    for _ in 0..12 {
        let batch = Batch::new()
            .with_entries(entries(index + 1, index + 4, 1, 80))
            .with_hard_state(HardState::new(1, 1, index));
        index += 4;
        model.apply(&batch);
        wal.write(batch).expect("write");
    }
    let before = wal.segment_seqs();
    assert!(before.len() >= 5, "{before:?}");
    let marker = Batch::new().with_snapshot(SnapshotMarker::new(index - 6, 1));
    model.apply(&marker);
    wal.write(marker).expect("write");
    let after = wal.segment_seqs();
    assert!(after.len() < before.len() && after.len() >= 2, "{after:?}");
    // The commit path only renames the purged segments; idle steps shrink and remove them.
    use crate::wal::Fs;
    let names = fs.list_dir(&dir()).expect("list");
    let purged = names.iter().filter(|n| n.ends_with(".wal.purged")).count();
    assert_eq!(purged, before.len() - after.len(), "{names:?}");
    assert_eq!(names.len(), before.len(), "{names:?}");
    while wal.purge_step().expect("purge step") {}
    let names = fs.list_dir(&dir()).expect("list");
    assert_eq!(names.len(), after.len(), "{names:?}");
    drop(wal);
    let (_, rec) = open(&fs, small_config());
    assert_eq!(Model::of(&rec), model);
    assert_eq!(rec.hard_state(), Some(HardState::new(1, 1, index - 4)));
}

#[test]
fn corruption_in_a_closed_segment_names_file_and_offset() {
    let fs = MemFs::new();
    {
        let (mut wal, _) = open(&fs, small_config());
        for i in 0..6 {
            wal.write(Batch::new().with_entries(entries(i * 3 + 1, i * 3 + 3, 1, 100)))
                .expect("write");
        }
        assert!(wal.segment_seqs().len() >= 3);
    }
    fs.corrupt_file(&segment_path(2), |f| f[32 + 20] ^= 0x10);
    let err = Wal::open(&dir(), small_config(), Box::new(fs.clone())).expect_err("corrupt");
    match err {
        WalError::Corrupt { path, offset, .. } => {
            assert_eq!(path, segment_path(2));
            assert_eq!(offset, 32);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = Wal::open(&dir(), small_config(), Box::new(fs.clone()))
        .expect_err("corrupt")
        .to_string();
    assert!(
        text.contains("0000000000000002.wal") && text.contains("offset 32"),
        "{text}"
    );
}

#[test]
fn a_missing_segment_is_corruption() {
    let fs = MemFs::new();
    {
        let (mut wal, _) = open(&fs, small_config());
        for i in 0..6 {
            wal.write(Batch::new().with_entries(entries(i * 3 + 1, i * 3 + 3, 1, 100)))
                .expect("write");
        }
    }
    use crate::wal::Fs;
    fs.remove_file(&segment_path(2)).expect("remove");
    assert!(matches!(
        Wal::open(&dir(), small_config(), Box::new(fs.clone())),
        Err(WalError::Corrupt { .. })
    ));
    // Losing the oldest segment without a snapshot is caught too.
    fs.remove_file(&segment_path(1)).expect("remove");
    assert!(matches!(
        Wal::open(&dir(), small_config(), Box::new(fs)),
        Err(WalError::Corrupt { .. })
    ));
}

#[test]
fn next_segment_is_prepared_ahead_of_need() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    wal.write(Batch::new().with_entries(entries(1, 3, 1, 100)))
        .expect("write");
    assert!(
        !wal.prepare_next_segment().expect("prepare"),
        "nothing to do before the segment is half full"
    );
    wal.write(Batch::new().with_entries(entries(4, 6, 1, 100)))
        .expect("write");
    let mut steps = 0;
    while wal.prepare_next_segment().expect("prepare") {
        steps += 1;
    }
    assert!(steps >= 2, "header, zeros, sync: {steps}");
    let tmp = dir().join("0000000000000002.wal.tmp");
    assert_eq!(fs.file(&tmp).map(|f| f.len()), Some(1024));
    // The roll is now a rename: the batch is the only write.
    let writes = fs.log().write_starts().len();
    wal.write(Batch::new().with_entries(entries(7, 9, 1, 100)))
        .expect("write");
    assert_eq!(wal.segment_seqs(), vec![1, 2]);
    assert_eq!(fs.log().write_starts().len(), writes + 1);
    assert!(fs.file(&tmp).is_none());
    drop(wal);
    let (_, rec) = open(&fs, small_config());
    assert_eq!(rec.entries().len(), 9);
}

#[test]
fn a_failed_preparation_loses_nothing() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    wal.write(Batch::new().with_entries(entries(1, 3, 1, 100)))
        .expect("write");
    wal.write(Batch::new().with_entries(entries(4, 6, 1, 100)))
        .expect("write");
    fs.fail_writes_after(10);
    assert!(matches!(
        wal.prepare_next_segment(),
        Err(WalError::Io { .. })
    ));
    fs.heal();
    assert!(!wal.is_poisoned());
    assert!(
        !wal.prepare_next_segment()
            .expect("gives up until the next roll")
    );
    wal.write(Batch::new().with_entries(entries(7, 9, 1, 100)))
        .expect("write");
    assert_eq!(wal.segment_seqs(), vec![1, 2]);
    drop(wal);
    let (_, rec) = open(&fs, small_config());
    assert_eq!(rec.entries().len(), 9);
}

#[test]
fn preallocation_syncs_each_chunk_of_zeros() {
    let fs = MemFs::new();
    crate::wal::fs::Fs::create_dir_all(&fs, &dir()).expect("dir");
    let mut spare =
        crate::wal::prealloc::Prealloc::start(&fs, &dir(), 2, (3 << 20) + 100).expect("start");
    let mut steps = 0;
    while !spare.step().expect("step") {
        steps += 1;
    }
    assert_eq!(steps, 5, "header, four chunks of zeros");
    // Unsynced zeros would reach the disk in one burst from the kernel's writeback, with the
    // WAL's fdatasync queued behind them.
    let header = crate::wal::segment::HEADER_BYTES as u64;
    assert!(
        fs.log().unsynced_bytes_max() <= (1 << 20) + header,
        "{} bytes left unsynced",
        fs.log().unsynced_bytes_max()
    );
}

#[test]
fn purged_segments_shrink_a_step_at_a_time_and_recovery_removes_leftovers() {
    use crate::wal::Fs;
    let config = WalConfig::default()
        .with_segment_bytes(9 << 20)
        .with_record_bytes_max(4 << 20)
        .with_batch_bytes_max(8 << 20);
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, config.clone());
    // Entries of 3 MiB: two to a 9 MiB segment.
    for i in 1..=7 {
        wal.write(Batch::new().with_entries(entries(i, i, 1, 3 << 20)))
            .expect("write");
    }
    assert!(wal.segment_seqs().len() >= 3, "{:?}", wal.segment_seqs());
    wal.write(Batch::new().with_snapshot(SnapshotMarker::new(4, 1)))
        .expect("marker");
    let purged = dir().join("0000000000000001.wal.purged");
    let len = |fs: &MemFs| fs.file(&purged).map(|f| f.len() as u64);
    assert_eq!(len(&fs), Some(9 << 20), "renamed whole on the commit path");
    assert!(wal.purge_step().expect("step"));
    assert_eq!(len(&fs), Some(5 << 20), "one step frees 4 MiB");
    // A crash (or stop) here leaves the purged files; the next open removes them.
    drop(wal);
    let (_, rec) = open(&fs, config);
    assert!(rec.report().removed_tmp_files() >= 1);
    assert_eq!(len(&fs), None);
    let names = fs.list_dir(&dir()).expect("list");
    assert!(!names.iter().any(|n| n.ends_with(".purged")), "{names:?}");
}

#[test]
fn an_oversized_batch_splits_into_ones_the_wal_takes_with_the_same_result() {
    let config = small_config();
    let max = config.batch_bytes_max();
    for (count, len) in [(1, 8), (9, 40), (30, 40), (12, 200), (3, 225)] {
        for with_snapshot in [false, true] {
            let mut whole = Batch::new()
                .with_entries(entries(6, 5 + count, 2, len))
                .with_hard_state(HardState::new(2, 1, 5 + count));
            if with_snapshot {
                whole = whole.with_snapshot(SnapshotMarker::new(5, 1));
            }
            let mut expected = Model::default();
            expected.apply(&Batch::new().with_entries(entries(1, 5, 1, 8)));
            let mut model = expected.clone();
            expected.apply(&whole);
            let parts = whole.clone().split(max);
            assert_eq!(parts.len() == 1, whole.encoded_bytes() <= max);
            let (first, last) = (&parts[0], &parts[parts.len() - 1]);
            assert_eq!(first.snapshot(), whole.snapshot(), "the marker comes first");
            assert_eq!(
                last.hard_state(),
                whole.hard_state(),
                "the hard state comes last"
            );
            for (i, part) in parts.iter().enumerate() {
                assert!(part.encoded_bytes() <= max, "part {i} of {count}x{len}");
                assert!(!part.is_empty());
                assert!(i == 0 || part.snapshot().is_none());
                assert!(i + 1 == parts.len() || part.hard_state().is_none());
            }
            let fs = MemFs::new();
            {
                let (mut wal, _) = open(&fs, config.clone());
                wal.append(Batch::new().with_entries(entries(1, 5, 1, 8)))
                    .expect("append");
                for part in parts {
                    model.apply(&part);
                    wal.append(part).expect("every part fits");
                }
                wal.sync().expect("sync");
            }
            assert_eq!(model, expected, "the parts do what the whole does");
            let (_, recovered) = open(&fs, config.clone());
            assert_eq!(Model::of(&recovered), expected);
        }
    }
}

#[test]
fn an_entry_read_back_from_the_first_format_is_not_written_again_without_its_kind() {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let legacy = Entry::without_kind(1, 1, Bytes::from_static(b"old"));
    assert!(matches!(
        wal.append(Batch::new().with_entries(vec![legacy])),
        Err(WalError::EntryWithoutKind { index: 1 })
    ));
    // Each kind comes back as it was written.
    wal.write(Batch::new().with_entries(entries(1, 10, 1, 8)))
        .expect("write");
    drop(wal);
    let (_, rec) = open(&fs, small_config());
    let kinds: Vec<_> = rec.entries().iter().map(Entry::kind).collect();
    let expected: Vec<_> = (1..=10).map(|i| Some(kind_of_index(i))).collect();
    assert_eq!(kinds, expected);
}
