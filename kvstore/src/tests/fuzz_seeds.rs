//! Test 6: the fuzz target's body over the seed corpus in `fuzz/seeds/kvstore_requests/`.

use std::path::PathBuf;

use crate::testing::fuzz_requests;

#[test]
fn fuzz_seeds_run_clean() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/kvstore_requests");
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the seed directory exists")
        .map(|e| e.expect("readable entry").path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    for seed in seeds {
        let data = std::fs::read(&seed).expect("readable seed");
        fuzz_requests(&data);
    }
}

#[test]
fn fuzz_driver_survives_arbitrary_bytes() {
    // A cheap deterministic byte soup; the fuzzer explores far more.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..200 {
        let data: Vec<u8> = (0..256)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        fuzz_requests(&data);
    }
}
