//! Snapshot files: round trip, checksum, retention, and crashes during save.

use super::*;
use crate::wal::testing::CrashMode;
use crate::wal::{SnapshotConfig, SnapshotError, SnapshotMeta, SnapshotStore};

fn snap_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("/data/snap")
}

fn store(fs: &MemFs, files_max: usize) -> SnapshotStore {
    SnapshotStore::open(
        &snap_dir(),
        SnapshotConfig::default()
            .with_snapshot_files_max(files_max)
            .with_snapshot_bytes_max(1 << 20),
        Box::new(fs.clone()),
    )
    .expect("open store")
}

fn meta(index: u64) -> SnapshotMeta {
    SnapshotMeta::new(index, index / 10 + 1, vec![1, 2, 3], vec![7])
}

#[test]
fn save_load_list_retain() {
    let fs = MemFs::new();
    let s = store(&fs, 2);
    for index in [10, 20, 30, 40] {
        s.save(&meta(index), &data(index, 1, 100)).expect("save");
    }
    let snap = s.load(30, 4).expect("load");
    assert_eq!(snap.meta(), &meta(30));
    assert_eq!(snap.data(), &data(30, 1, 100));
    assert!(matches!(s.load(30, 5), Err(SnapshotError::NotFound { .. })));
    // The WAL still points at 20: 20 and newer stay.
    assert_eq!(s.retain(20).expect("retain"), 1);
    assert_eq!(s.list().expect("list"), vec![(20, 3), (30, 4), (40, 5)]);
    assert_eq!(s.retain(40).expect("retain"), 1);
    assert_eq!(s.list().expect("list"), vec![(30, 4), (40, 5)]);
    assert!(matches!(
        s.save(&meta(50), &vec![0u8; 2 << 20]),
        Err(SnapshotError::TooLarge { .. })
    ));
}

#[test]
fn a_streamed_snapshot_reads_back_like_a_saved_one() {
    use std::io::Write;
    let fs = MemFs::new();
    let s = store(&fs, 3);
    // Writes of every size around the chunk, so the gathering and the direct path both run.
    let body: Vec<u8> = (0..700_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let pieces = [1usize, 4095, 200_000, 1, 300_000, 195_903];
    assert_eq!(pieces.iter().sum::<usize>(), body.len());
    let prefix = |len: u64| {
        let mut p = b"HEAD".to_vec();
        p.extend_from_slice(&len.to_le_bytes());
        p
    };
    let data_bytes = s
        .save_streamed(
            &meta(10),
            12,
            |w| {
                let mut at = 0;
                for n in pieces {
                    w.write_all(&body[at..at + n])?;
                    at += n;
                }
                Ok(())
            },
            prefix,
        )
        .expect("save streamed");
    assert_eq!(data_bytes, 12 + body.len() as u64);
    let mut expected = prefix(body.len() as u64);
    expected.extend_from_slice(&body);
    let snap = s.load(10, 2).expect("load");
    assert_eq!(snap.meta(), &meta(10));
    assert_eq!(snap.data().as_ref(), expected.as_slice());

    // Past snapshot_bytes_max (1 MiB here) the save fails and leaves no file behind.
    let too_large = s.save_streamed(
        &meta(20),
        0,
        |w| {
            for _ in 0..3 {
                w.write_all(&body[..500_000])?;
            }
            Ok(())
        },
        |_| Vec::new(),
    );
    assert!(
        matches!(too_large, Err(SnapshotError::TooLarge { .. })),
        "{too_large:?}"
    );
    assert_eq!(s.list().expect("list"), vec![(10, 2)]);
    let tmp = snap_dir().join(format!("{:016x}-{:016x}.snap.tmp", 20, 3));
    assert!(fs.file(&tmp).is_none(), "the temporary file is removed");
}

#[test]
fn every_bit_flip_is_detected() {
    let fs = MemFs::new();
    let s = store(&fs, 3);
    s.save(&meta(10), &data(10, 1, 40)).expect("save");
    let path = snap_dir().join(format!("{:016x}-{:016x}.snap", 10, 2));
    let len = fs.file(&path).expect("file").len();
    for bit in 0..len * 8 {
        fs.corrupt_file(&path, |f| f[bit / 8] ^= 1 << (bit % 8));
        match s.load(10, 2) {
            Err(SnapshotError::Corrupt { path: p, .. }) => assert_eq!(p, path),
            other => panic!("bit {bit}: {other:?}"),
        }
        fs.corrupt_file(&path, |f| f[bit / 8] ^= 1 << (bit % 8));
    }
    fs.corrupt_file(&path, |f| f.truncate(10));
    assert!(matches!(s.load(10, 2), Err(SnapshotError::Corrupt { .. })));
}

#[test]
fn a_crash_during_save_leaves_old_or_new_never_half() {
    let fs = MemFs::new();
    let s = store(&fs, 3);
    s.save(&meta(10), &data(10, 1, 300)).expect("save");
    s.save(&meta(20), &data(20, 1, 1500)).expect("save");
    let log = fs.log();
    let total = log.written_bytes();
    for crash_at in 0..=total {
        for mode in [CrashMode::Prefix, CrashMode::DurableOnly] {
            let (image, _) = log.crash_image(crash_at, mode);
            let s = store(&image, 3);
            let listed = s.list().expect("list");
            for (index, term) in &listed {
                let snap = s.load(*index, *term).unwrap_or_else(|e| {
                    panic!("crash at {crash_at} {mode:?}: listed snapshot fails: {e}")
                });
                assert_eq!(
                    snap.data(),
                    &data(*index, 1, if *index == 10 { 300 } else { 1500 })
                );
            }
            use crate::wal::Fs;
            let names = image.list_dir(&snap_dir()).expect("list");
            assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        }
    }
}

#[test]
fn a_streamed_snapshot_is_synced_as_it_is_written() {
    use std::io::Write;
    let fs = MemFs::new();
    let s = SnapshotStore::open(
        &snap_dir(),
        SnapshotConfig::default().with_snapshot_bytes_max(64 << 20),
        Box::new(fs.clone()),
    )
    .expect("open store");
    let piece = vec![7u8; 300_000];
    s.save_streamed(
        &meta(10),
        0,
        |w| {
            for _ in 0..60 {
                w.write_all(&piece)?;
            }
            Ok(())
        },
        |_| Vec::new(),
    )
    .expect("save streamed");
    // 18 MB written, never more than the sync interval and one chunk of it unsynced.
    let unsynced = fs.log().unsynced_bytes_max();
    assert!(
        unsynced <= (4 << 20) + (1 << 20),
        "{unsynced} bytes left unsynced"
    );
}
