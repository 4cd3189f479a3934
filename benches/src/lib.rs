//! tally-benches.

pub mod bench;
