//! What the loop does with its peers' events: Raft messages into the core, the other frame
//! kinds to the part that speaks them, links and refusals to the member's standing.

use std::time::Instant;

use bytes::Bytes;

use super::event_loop::Server;
use super::standing::Verdict;
use super::start_check::{self, Answer};
use super::startup::ServerError;
use crate::peer::{FrameKind, PeerEvent};

impl Server {
    pub(super) fn drain_peers(&mut self) {
        while let Some(event) = self.peers.poll_event() {
            match event {
                PeerEvent::Frame { from, kind, frame } => self.receive_frame(from, kind, &frame),
                PeerEvent::Unsupported { peer, tag } => self.on_unsupported(peer, tag),
                PeerEvent::Connected { peer } => {
                    eprintln!("tallyd: peer {peer:x} connected");
                    self.standing.on_peer_connected();
                    self.ask_peers_about_this_member();
                }
                PeerEvent::Disconnected { peer } => {
                    eprintln!("tallyd: peer {peer:x} disconnected");
                    // Chunks after a gap would be refused: the core sends a new snapshot.
                    self.transfers.abort(peer);
                    self.inbound.abort(peer, &self.snapshots);
                    self.node.report_unreachable(peer);
                }
                PeerEvent::Refused {
                    peer,
                    reason,
                    not_a_member,
                } => {
                    // The transport logged it; the standing decides whether it ends the member.
                    self.standing
                        .on_peer_refused(peer, &reason, not_a_member, Instant::now());
                }
            }
        }
    }

    /// Hands a peer's frame to the part that speaks its kind.
    fn receive_frame(&mut self, from: u64, kind: FrameKind, frame: &Bytes) {
        match kind {
            FrameKind::Raft => self.step_peer_message(from, frame),
            FrameKind::SnapshotChunk => self.receive_snapshot_chunk(from, frame),
            FrameKind::LeaseQuery => self.answer_lease_query(from, frame),
            FrameKind::PromoteQuery => self.answer_promote_query(from, frame),
            FrameKind::LeaderAnswer => self.finish_leader_query(from, frame),
            FrameKind::StartQuery => self.answer_start_query(from, frame),
            FrameKind::StartAnswer => self.standing.on_start_answer(from, frame, Instant::now()),
            // The transport reports these as `PeerEvent::Unsupported`.
            FrameKind::Unsupported => {}
        }
    }

    /// `peer` runs a release that does not know a kind of frame this member sent it: what
    /// waits on an answer to such a frame is ended now.
    fn on_unsupported(&mut self, peer: u64, tag: u8) {
        let kind = FrameKind::of_tag(tag);
        eprintln!(
            "tallyd: peer {peer:x} does not know frame kind {kind:?} ({tag:#04x}): it runs \
             another release (see the rolling-upgrade rule in docs/operations.md)"
        );
        match kind {
            Some(FrameKind::LeaseQuery | FrameKind::PromoteQuery) => {
                self.fail_leader_queries_to(peer)
            }
            Some(FrameKind::StartQuery) => {
                self.standing.on_start_unanswerable(peer, Instant::now())
            }
            Some(FrameKind::SnapshotChunk) => {
                self.transfers.abort(peer);
                self.node.report_unreachable(peer);
            }
            _ => {}
        }
    }

    fn step_peer_message(&mut self, from: u64, frame: &Bytes) {
        match tally_core::codec::decode(frame) {
            // A snapshot's data comes in chunks, or in the frame: one without data would
            // leave the core's write without a file (see `snapshots::incoming`).
            Ok(message) if message.needs_snapshot_data() => {
                eprintln!("tallyd: peer {from:x} sent a snapshot without data; dropped")
            }
            Ok(message) => self.step_message(from, message),
            Err(e) => eprintln!("tallyd: undecodable frame from peer {from:x}: {e}"),
        }
    }

    /// Asks every peer that has not answered yet what it knows of this member (while the
    /// start check is pending).
    pub(super) fn ask_peers_about_this_member(&mut self) {
        let Some((query, peers)) = self.standing.start_query() else {
            return;
        };
        for peer in peers {
            let _ = self.peers.send(peer, query.clone());
        }
    }

    /// A starting peer asks what this member knows of it: whether it has run (its client
    /// URLs, which a member publishes once it has a leader, are in the table, as etcd's check
    /// has it; names come from `--initial-cluster` and say nothing), and, from a leader, the
    /// highest index it acknowledged in this term.
    fn answer_start_query(&mut self, from: u64, frame: &[u8]) {
        let Some(asked) = start_check::decode_query(frame) else {
            return eprintln!("tallyd: malformed start query from peer {from:x}; dropped");
        };
        if asked != from {
            return eprintln!("tallyd: peer {from:x} asked about another member; dropped");
        }
        let has_run = self
            .members
            .get(asked)
            .is_some_and(|m| !m.client_urls.is_empty());
        let answer = Answer {
            member_id: asked,
            has_run,
            term: self.node.status().term(),
            acknowledged: self.node.progress(asked).map_or(0, |p| p.matched()),
        };
        let _ = self.peers.send(from, start_check::encode_answer(&answer));
    }

    /// The error a verdict of the member's standing stops it with.
    pub(super) fn stop_for(&self, verdict: Verdict) -> ServerError {
        let id = self.identity.member_id;
        let data_dir = self.flags.data_dir().display();
        match verdict {
            Verdict::Removed => ServerError::Removed,
            Verdict::CannotJoin(reason) => ServerError::CannotJoin(reason),
            Verdict::Regressed {
                peer,
                term,
                acknowledged,
                last_index,
            } => ServerError::DataDir(format!(
                "member {id:x}'s data directory {data_dir} is older than what it acknowledged: the leader {peer:x} holds index {acknowledged} (term {term}) as acknowledged by it, but its log ends at {last_index}. \
                 It was restored from an old copy or lost writes; starting it could make it vote twice or lose acknowledged entries. \
                 To bring it back: etcdctl member remove {id:x}, etcdctl member add, then start it from an empty data directory with --initial-cluster-state existing"
            )),
            Verdict::AlreadyBootstrapped { peer } => ServerError::DataDir(format!(
                "member {id:x} has already been bootstrapped (peer {peer:x} knows it); its data directory {data_dir} is new or was wiped. \
                 To bring it back: etcdctl member remove {id:x}, etcdctl member add, then start it with --initial-cluster-state existing"
            )),
        }
    }

    /// Steps a message that arrived on `from`'s link.
    pub(super) fn step_message(&mut self, from: u64, message: tally_core::Message) {
        if self.standing.holds_the_core() {
            // Votes and acknowledgements wait for the start check's verdict.
            return;
        }
        if message.from() != from {
            return eprintln!(
                "tallyd: peer {from:x} sent a message claiming another sender; dropped"
            );
        }
        if let Err(e) = self.node.step(message) {
            eprintln!("tallyd: refused a message from peer {from:x}: {e}");
        }
    }
}
