//! tally-runtime-mio: filled in by issues 3 and 5.

pub mod grpc;
pub mod peer;
pub mod server;
pub mod wal;
