//! # tally-core: a sans-IO Raft state machine
//!
//! `tally-core` is `#![no_std]` + `alloc`. It reads no clock, does no I/O, starts no threads
//! and owns its randomness (seeded through [`Config`]). Time is the number of [`Node::tick`]
//! calls. The caller moves bytes and writes to disk; the core decides.
//!
//! ## The drain contract
//!
//! 1. Create a node with [`Node::bootstrap`] (new cluster), [`Node::join`] (added later) or
//!    [`Node::restart`] (from storage).
//! 2. Feed inputs. Each is a method that queues work and returns at once: [`Node::tick`] at a
//!    fixed interval, [`Node::step`] for every message from a peer (decode with
//!    [`codec::decode`]), [`Node::propose`], [`Node::propose_conf_change`],
//!    [`Node::read_index`], [`Node::transfer_leader`], [`Node::on_persisted`],
//!    [`Node::compact`] and [`Node::report_unreachable`]. Give it every input that arrived in
//!    one turn of your loop before draining: proposals from one turn then share one append.
//! 3. Drain [`Node::poll_action`] until it returns `None`. Within one drain, actions come in
//!    this order: leader changes and read confirmations raised by the inputs, then `Send`s,
//!    then at most one `Persist`, then `ApplySnapshot` and `Apply`, then `RequestSnapshot`.
//! 4. Carry the actions out:
//!    - [`Action::Send`]: deliver to the peer, in any order; losing it is safe.
//!    - [`Action::Persist`]: write it durably (snapshot, entries, hard state), then call
//!      [`Node::on_persisted`] with its `last_index()` and `last_term()`. Only one `Persist`
//!      is outstanding at a time; the next one is emitted after the acknowledgement. You may
//!      keep draining and sending while the write is in flight: the core itself holds back
//!      every message that promises durable state (vote grants, append acknowledgements)
//!      until the acknowledgement arrives. The (index, term) pair makes a late
//!      acknowledgement of entries that were since truncated and rewritten harmless.
//!    - [`Action::ApplySnapshot`] then [`Action::Apply`]: apply in order. Entries are
//!      committed and durable on this node.
//!    - [`Action::ReadReady`]: serve the read once you have applied `index`.
//!    - [`Action::RequestSnapshot`]: snapshot the state machine at `index` and call
//!      [`Node::compact`]. Once the snapshot is stored, you may call
//!      [`Node::release_snapshot_data`] so the core does not keep its bytes in memory; a
//!      `Send` of it then carries none ([`Message::needs_snapshot_data`]) and you put them
//!      back with [`Message::with_snapshot_data`] before encoding it, or stream them from
//!      your storage behind [`codec::encode_snapshot_head`].
//!    - Receiving, the same holds the other way: [`codec::decode_snapshot_head`] reads a
//!      snapshot message's head before its data, and you may step that message without
//!      data while you keep the data in your storage. The core never reads snapshot data:
//!      the `Persist` and `ApplySnapshot` of that snapshot then carry none, and you supply
//!      them from your storage.
//! 5. Go back to 2.
//!
//! Membership changes take effect when applied (see [`Node::propose_conf_change`]).
//!
//! ## Errors
//! Operating errors are typed `#[non_exhaustive]` enums ([`ProposeError`], [`StepError`],
//! ...). Input from peers never panics: [`codec::decode`] is total and [`Node::step`] refuses
//! malformed messages.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod action;
pub mod codec;
mod config;
mod error;
mod log;
mod message;
mod node;
mod progress;
mod rng;
mod types;

#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use action::{Action, Persist};
pub use config::Config;
pub use error::{
    CompactError, ConfigError, ProposeError, ReadIndexError, StepError, TransferError,
};
pub use message::{Message, MessageKind};
pub use node::{LEARNER_READY_PERCENT, Node, ProgressStatus, Status};
pub use progress::{ProgressState, is_majority, quorum_index};
pub use types::{
    ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, NO_NODE, NodeId, Recovered,
    Role, Snapshot, SnapshotMeta,
};
