//! Test-only parts of the storage layer, for this crate's tests and (with the `testing`
//! feature) other crates': an in-memory file system that injects full disks, failed syncs and
//! crashes at any byte.

mod memfs;

pub use memfs::{CrashMode, MemFs, MemFsLog};
