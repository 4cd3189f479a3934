//! tally-tests: shared harnesses for the cluster simulation and the process-level tests.

pub mod sim;
