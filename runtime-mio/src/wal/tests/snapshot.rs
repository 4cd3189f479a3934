//! Snapshot files: round trip, checksum, retention, and crashes during save.

use super::*;
use crate::wal::{CrashMode, SnapshotConfig, SnapshotError, SnapshotMeta, SnapshotStore};

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
