//! Peer events: Raft messages into the core, the other frame kinds to the part that speaks
//! them, links and refusals to the member's standing.

use std::time::Instant;

use bytes::Bytes;

use super::Server;
use crate::peer::{FrameKind, PeerEvent};
use crate::server::leader_query::fail_leader_queries_to;
use crate::server::start_check;

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
                    self.snapshots.on_peer_disconnected(peer);
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
            FrameKind::SnapshotChunk => {
                if let Some(received) = self.snapshots.receive_chunk(from, frame) {
                    self.step_message(from, received.message);
                    self.snapshots.keep_received(received.file, &self.node);
                }
            }
            FrameKind::LeaseQuery => self.leader_query_service().answer_lease_query(from, frame),
            FrameKind::PromoteQuery => self
                .leader_query_service()
                .answer_promote_query(from, frame),
            FrameKind::LeaderAnswer => self.leader_query_service().finish_leader_query(from, frame),
            FrameKind::StartQuery => {
                if let Some(answer) =
                    start_check::answer_query(from, frame, &self.members, &self.node)
                {
                    let _ = self.peers.send(from, answer);
                }
            }
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
                fail_leader_queries_to(&mut self.leader_queries, &mut self.calls, peer)
            }
            Some(FrameKind::StartQuery) => {
                self.standing.on_start_unanswerable(peer, Instant::now())
            }
            Some(FrameKind::SnapshotChunk) => {
                self.snapshots.abort_sending_to(peer);
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

    /// Steps a message that arrived on `from`'s link.
    fn step_message(&mut self, from: u64, message: tally_core::Message) {
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
