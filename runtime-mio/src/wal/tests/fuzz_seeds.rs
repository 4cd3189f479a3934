//! Runs the fuzz target's body over the seed corpus, and can regenerate the seeds.

use std::path::PathBuf;

use super::*;
use crate::wal::fuzz_segment_reader;

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/wal_segment_reader")
}

/// A small valid segment: three batches, one with a truncation and a snapshot marker.
fn valid_segment() -> Vec<u8> {
    let fs = MemFs::new();
    let config = WalConfig::default()
        .with_segment_bytes(1024)
        .with_batch_bytes_max(512)
        .with_record_bytes_max(256);
    let (mut wal, _) = open(&fs, config);
    wal.write(
        Batch::new()
            .with_entries(entries(1, 3, 1, 12))
            .with_hard_state(HardState::new(1, 1, 0)),
    )
    .expect("write");
    wal.write(Batch::new().with_entries(entries(2, 3, 2, 9)))
        .expect("write");
    wal.write(
        Batch::new()
            .with_snapshot(SnapshotMarker::new(2, 2))
            .with_hard_state(HardState::new(2, 1, 3)),
    )
    .expect("write");
    let mut seg = fs.file(&segment_path(1)).expect("segment");
    let used = seg.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    seg.truncate(used + 16);
    seg
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let valid = valid_segment();
    let used = valid.len() - 16;
    let mut torn = valid.clone();
    torn.truncate(used - 20);
    let mut zeroed = valid.clone();
    zeroed[used - 40..used - 20].fill(0);
    let mut flipped = valid.clone();
    flipped[60] ^= 0x04;
    vec![
        ("valid_segment", valid),
        ("torn_tail", torn),
        ("zeroed_sector", zeroed),
        ("bit_flip", flipped),
        ("header_only", crate::wal::segment::header(1).to_vec()),
    ]
}

#[test]
fn fuzz_target_survives_the_seed_corpus() {
    let dir = seed_dir();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let data = std::fs::read(entry.expect("entry").path()).expect("seed");
        fuzz_segment_reader(&data);
        count += 1;
    }
    assert!(count >= 4, "expected the seed files in {}", dir.display());
    for (_, data) in seeds() {
        fuzz_segment_reader(&data);
        for cut in 0..data.len() {
            fuzz_segment_reader(&data[..cut]);
        }
    }
}

#[test]
fn fuzz_target_survives_random_mutations() {
    let mut rng = Rng::new(5);
    for (_, data) in seeds() {
        for _ in 0..500 {
            let mut d = data.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(d.len() as u64) as usize;
                d[at] = rng.next() as u8;
            }
            fuzz_segment_reader(&d);
        }
    }
}

/// `cargo test -p tally-runtime-mio write_fuzz_seeds -- --ignored` regenerates the corpus.
#[test]
#[ignore = "writes files into the repository"]
fn write_fuzz_seeds() {
    let dir = seed_dir();
    std::fs::create_dir_all(&dir).expect("seed directory");
    for (name, data) in seeds() {
        std::fs::write(dir.join(name), data).expect("write seed");
    }
}
