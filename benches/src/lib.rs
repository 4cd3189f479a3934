//! tally-benches.
