//! Transport tests: real sockets on 127.0.0.1, one mio `Poll` driving several transports in
//! one thread, bounded by a deadline (no sleeps).

mod harness;
mod limits;
mod plain;
mod proxy;
mod tls;
mod wire;

/// The `peer_wire` fuzz target's seed corpus replays cleanly.
#[test]
fn fuzz_seed_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/peer_wire");
    let mut seeds = 0;
    for file in std::fs::read_dir(dir).expect("seed folder") {
        let data = std::fs::read(file.expect("entry").path()).expect("readable");
        super::fuzz_peer_wire(&data);
        for cut in 0..data.len() {
            super::fuzz_peer_wire(&data[..cut]);
        }
        seeds += 1;
    }
    assert!(seeds >= 3);
}
