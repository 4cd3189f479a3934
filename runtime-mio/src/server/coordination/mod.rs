//! etcd's Lock and Election services (`v3lockpb`, `v3electionpb`): the recipes of etcd's
//! `clientv3/concurrency` run inside the member, as etcd's own servers run them.
//!
//! A lock is the key `name/<lease>` put with the caller's lease; its holder is the one whose key
//! was created first, and a waiter holds it once every key created before its own is deleted
//! (released, or gone with an expired lease). An election is the same with a value: the
//! campaigner created first leads, and its key's value is the proclamation.
//!
//! Every step is a store request through Raft (`requests`), proposed by the member the client
//! called; what to do with its apply is kept here under its request id ([`Coordination`]).
//! A waiter is then checked after each turn's applies against the member's own applied store,
//! by the one key created just before its own: it wakes on the turn that applies that key's
//! deletion, on followers too. Observers are checked the same way and see each leader and its
//! latest value (proclamations applied in one turn arrive as the last of them, as etcd's
//! `Observe` promises "the most recent leader value").
//!
//! A call that ends while it waits lets go as etcd's do: a waiting `Lock` deletes its key, a
//! waiting `Campaign` resigns.

mod election;
mod lock;
mod requests;
mod service;
#[cfg(test)]
mod tests;

pub(super) use election::leader_response;
pub(super) use service::{Coordination, CoordinationService};
