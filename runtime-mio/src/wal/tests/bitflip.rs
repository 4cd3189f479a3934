//! Bit flips: in a closed segment they are corruption with file and offset; in the last write
//! of the last segment they look like a torn write and are truncated; in an earlier write of
//! the last segment they are corruption.

use super::*;
use crate::wal::WalError;
use crate::wal::segment::HEADER_BYTES;

/// Writes batches of two small entries until the WAL has `segments` segments and the last
/// one holds at least three writes. Returns the model before the last batch, the model after
/// it, and the byte range of the last write in the last segment.
fn build(segments: usize) -> (MemFs, Model, Model, std::ops::Range<usize>) {
    let fs = MemFs::new();
    let (mut wal, _) = open(&fs, small_config());
    let mut model = Model::default();
    let mut before = Model::default();
    let mut index = 0;
    let mut writes_in_last = 0;
    let mut range = 0..0;
    while wal.segment_seqs().len() < segments || writes_in_last < 3 {
        let seqs = wal.segment_seqs();
        let last_seq = seqs[seqs.len() - 1];
        let old = fs.file(&segment_path(last_seq)).unwrap_or_default();
        let batch = Batch::new()
            .with_entries(entries(index + 1, index + 2, 1, 40))
            .with_hard_state(HardState::new(1, 0, index));
        index += 2;
        before = model.clone();
        model.apply(&batch);
        wal.write(batch).expect("write");
        let seqs = wal.segment_seqs();
        let new_last = seqs[seqs.len() - 1];
        let new = fs.file(&segment_path(new_last)).expect("segment");
        if new_last == last_seq {
            writes_in_last += 1;
            let start = old
                .iter()
                .zip(&new)
                .position(|(a, b)| a != b)
                .expect("changed");
            let end = new.iter().rposition(|&b| b != 0).expect("data") + 1;
            range = start..end;
        } else {
            writes_in_last = 1;
            range = HEADER_BYTES..new.iter().rposition(|&b| b != 0).expect("data") + 1;
        }
    }
    (fs, before, model, range)
}

fn flip(fs: &MemFs, seq: u64, bit: usize) {
    fs.corrupt_file(&segment_path(seq), |f| f[bit / 8] ^= 1 << (bit % 8));
}

#[test]
fn bit_flips_in_closed_segments_are_corruption() {
    let (fs, _, _, _) = build(4);
    let mut rng = Rng::new(7);
    let seqs = {
        let (wal, _) = open(&fs, small_config());
        wal.segment_seqs()
    };
    for trial in 0..400 {
        let seq = seqs[rng.below(seqs.len() as u64 - 1) as usize];
        let len = fs.file(&segment_path(seq)).expect("segment").len();
        // Half the flips land in the used part, half anywhere (zeros included).
        let used = fs
            .file(&segment_path(seq))
            .and_then(|f| f.iter().rposition(|&b| b != 0))
            .expect("data")
            + 1;
        let limit = if trial % 2 == 0 { used } else { len };
        let bit = rng.below(limit as u64 * 8) as usize;
        flip(&fs, seq, bit);
        match Wal::open(&dir(), small_config(), Box::new(fs.clone())) {
            Err(WalError::Corrupt { path, offset, .. }) => {
                assert_eq!(path, segment_path(seq), "trial {trial} bit {bit}");
                let byte = (bit / 8) as u64;
                if byte >= HEADER_BYTES as u64 {
                    assert!(offset <= byte, "trial {trial}: offset {offset} byte {byte}");
                } else {
                    assert!(offset < HEADER_BYTES as u64, "trial {trial}");
                }
            }
            Ok(_) => panic!("trial {trial}: flip of bit {bit} in segment {seq} went unnoticed"),
            Err(e) => panic!("trial {trial}: unexpected {e}"),
        }
        flip(&fs, seq, bit);
    }
    // Undoing every flip leaves a clean log.
    Wal::open(&dir(), small_config(), Box::new(fs)).expect("clean again");
}

#[test]
fn bit_flips_in_the_tail_are_truncated() {
    let mut rng = Rng::new(11);
    for trial in 0..40 {
        let (fs, before, _, range) = build(2);
        let seqs = {
            let (wal, _) = open(&fs, small_config());
            wal.segment_seqs()
        };
        let last = *seqs.last().expect("segment");
        let bit = range.start * 8 + rng.below((range.len() * 8) as u64) as usize;
        flip(&fs, last, bit);
        let (_, rec) = open(&fs, small_config());
        assert_eq!(Model::of(&rec), before, "trial {trial} bit {bit}");
        assert_eq!(
            rec.report().truncated_bytes(),
            range.len() as u64,
            "trial {trial}"
        );
        assert_eq!(
            rec.report().truncated_at(),
            Some((segment_path(last).as_path(), range.start as u64))
        );
    }
}

#[test]
fn bit_flips_before_the_last_write_of_the_last_segment_are_corruption() {
    let mut rng = Rng::new(13);
    let (fs, _, _, range) = build(2);
    let seqs = {
        let (wal, _) = open(&fs, small_config());
        wal.segment_seqs()
    };
    let last = *seqs.last().expect("segment");
    for trial in 0..200 {
        let span = (range.start - HEADER_BYTES) as u64 * 8;
        let bit = HEADER_BYTES * 8 + rng.below(span) as usize;
        flip(&fs, last, bit);
        match Wal::open(&dir(), small_config(), Box::new(fs.clone())) {
            Err(WalError::Corrupt { path, offset, .. }) => {
                assert_eq!(path, segment_path(last));
                assert!(offset <= (bit / 8) as u64, "trial {trial}");
            }
            Ok(_) => panic!("trial {trial}: flip of bit {bit} was taken for a torn tail"),
            Err(e) => panic!("trial {trial}: unexpected {e}"),
        }
        flip(&fs, last, bit);
    }
}
