//! tally-runtime-mio: the `tallyd` binary's parts, around one mio event loop.
//!
//! - [`etcd_snapshot`]: etcd's snapshot files (bbolt), imported with every revision and
//!   written for `etcdctl snapshot restore`.
//! - [`client`]: the client port: etcd's gRPC API over HTTP/2 (h2c or TLS), plain HTTP/1.1,
//!   TLS, and the `:authority` filter in front of HTTP/2.
//! - [`peer`]: the peer transport: one framed, optionally mutual-TLS link per member pair.
//! - [`wal`]: the write-ahead log and snapshot files.
//! - [`server`]: the event loop that owns the Raft core and the store, etcd's services, and
//!   the flags.

pub mod client;
pub mod etcd_snapshot;
pub mod peer;
pub mod server;
pub mod wal;
