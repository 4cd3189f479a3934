//! tally-tests: shared harnesses for the cluster simulation and the process-level tests.

pub mod etcd;
pub mod h2raw;
pub mod http;
pub mod kv_sim;
pub mod linearizability;
pub mod process;
pub mod proxy;
pub mod sim;
