//! Unit tests of the whole store through its public API.

mod determinism;
mod etcd_examples;
mod fuzz_seeds;
mod history;
mod leases;
mod model_check;
mod quota;
mod snapshots;
mod split_apply;
mod watch;
