//! `tallyd`: one mio event loop that owns the Raft core, the kvstore, the peer transport, the
//! client gRPC server and the timers, with the WAL on its own thread.
//!
//! One turn of the loop:
//! 1. wait for socket readiness, the WAL thread's waker, or the next tick;
//! 2. feed everything that arrived into the core (peer frames, client proposals, read
//!    requests, WAL completions, ticks) — all proposals of one turn become one batch;
//! 3. drain the core's actions: send to peers, hand `Persist` to the WAL thread, apply
//!    committed entries to the kvstore and answer waiting clients, serve confirmed reads;
//! 4. deliver watch events, step compaction, expire leases (leader only), flush sockets.

mod apply;
mod apply_queue;
mod auth;
mod auto_compaction;
mod calls;
mod conf_waiters;
mod coordination;
mod error;
mod etcd_version;
mod event_loop;
pub mod flags;
mod gateway;
mod heap_trim;
mod identity;
mod identity_file;
mod join_watchdog;
mod leader_query;
mod lease_expiry;
mod members;
mod metrics;
mod payload;
mod persistence;
mod reads;
mod request_ids;
mod rpc;
mod sliced_ranges;
mod snapshots;
mod standing;
mod start_check;
mod startup;
mod storage;
mod transports;
mod waiters;

pub use error::ServerError;
pub use flags::AutoCompactionConfig;
pub use flags::{FlagError, Flags};
pub use gateway::fuzz_gateway_json;
pub(crate) use startup::read_snapshot_file;
pub use startup::restore_snapshot_file;

/// Runs `tallyd` until a fatal error.
pub fn run(flags: Flags) -> Result<(), ServerError> {
    let (flags, identity, recovered) = startup::prepare(flags)?;
    event_loop::run(flags, identity, recovered)
}

#[cfg(test)]
mod tests;
