//! Runs the fuzz target's body over the seed corpus and mutations of it, and can regenerate
//! the seeds made here (the etcd-written one comes from etcd 3.4.23).

use std::path::PathBuf;

use super::*;
use crate::etcd_snapshot::fuzz_etcd_snapshot_reader;

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/etcd_snapshot_reader")
}

/// Small files made here: a store's export, an empty store's, and one without its trailer.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut small = KvStore::new(KvConfig::default());
    for (k, v) in [("a", "1"), ("b", "2"), ("a", "3")] {
        small
            .put(&PutRequest {
                key: b(k),
                value: b(v),
                ..PutRequest::default()
            })
            .unwrap();
    }
    small
        .delete_range(&DeleteRangeRequest {
            key: b("b"),
            ..DeleteRangeRequest::default()
        })
        .unwrap();
    let small = exported(&small);
    let untrailed = small[..small.len() - 32].to_vec();
    vec![
        ("tally-small.db", small),
        ("tally-small-no-trailer.db", untrailed),
        (
            "tally-empty.db",
            exported(&KvStore::new(KvConfig::default())),
        ),
    ]
}

#[test]
fn fuzz_target_survives_the_seed_corpus() {
    let mut count = 0;
    for entry in std::fs::read_dir(seed_dir()).expect("seed directory") {
        let data = std::fs::read(entry.expect("entry").path()).expect("seed");
        fuzz_etcd_snapshot_reader(&data);
        count += 1;
    }
    assert!(
        count >= 4,
        "expected the seed files in {}",
        seed_dir().display()
    );
}

/// A cheap PRNG (xorshift): the mutations are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn fuzz_target_survives_random_mutations() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (_, data) in seeds() {
        // Without the trailer, so that mutations reach the bbolt reader.
        let data = &data[..data.len() - data.len() % 512];
        for _ in 0..300 {
            let mut d = data.to_vec();
            for _ in 0..=rng.next() % 4 {
                let at = (rng.next() % d.len() as u64) as usize;
                d[at] = rng.next() as u8;
            }
            fuzz_etcd_snapshot_reader(&d);
        }
    }
}

/// `cargo test -p tally-runtime-mio write_etcd_fuzz_seeds -- --ignored` regenerates the seeds
/// made here.
#[test]
#[ignore = "writes files into the repository"]
fn write_etcd_fuzz_seeds() {
    for (name, data) in seeds() {
        std::fs::write(seed_dir().join(name), data).expect("write seed");
    }
}
