//! Raft's safety rules, each pinned by a test that replays the schedule which breaks it when
//! the rule is missing: the current-term commit rule (Figure 8), ReadIndex on a deposed
//! leader, the durable vote across a restart, and PreVote. Then the programmer-error
//! assertions, and the typed refusals of the same conditions when a peer causes them.

mod assertions;
mod deposed_leader_read;
mod figure_8;
mod net;
mod pre_vote;
mod restart;
