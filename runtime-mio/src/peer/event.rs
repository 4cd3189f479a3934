//! What the transport reports: events for the loop, counters for metrics.

use bytes::Bytes;

use super::FrameKind;

/// What the transport reports to the event loop, drained with
/// [`crate::peer::PeerTransport::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A frame from a connected peer, of a kind in the table of [`FrameKind`].
    Frame {
        /// The member that sent it.
        from: u64,
        /// Its kind, by its first byte.
        kind: FrameKind,
        /// The frame, first byte included.
        frame: Bytes,
    },
    /// The peer does not know the kind of a frame this member sent it (first byte `tag`): a
    /// member of another release. Whatever waits on an answer to such a frame will get none.
    Unsupported {
        /// The member.
        peer: u64,
        /// The first byte of the frame it did not know ([`FrameKind::of_tag`]).
        tag: u8,
    },
    /// A link to the peer completed its handshake; queued frames are flowing.
    Connected {
        /// The member.
        peer: u64,
    },
    /// The link to the peer broke (tallyd calls `tally_core::Node::report_unreachable`).
    Disconnected {
        /// The member.
        peer: u64,
    },
    /// A handshake failed for a reason that retrying does not fix (see
    /// `CloseReason::is_refusal`): the two ends do not trust each other's certificates, belong
    /// to different clusters, or one does not know the other. The transport keeps retrying;
    /// what to make of it is the caller's decision (tallyd stops a member that never joined).
    Refused {
        /// The member dialed, when this end dialed; `None` for an inbound connection refused
        /// before its hello named the member.
        peer: Option<u64>,
        /// Why, for a log line or an exit message.
        reason: String,
        /// The dialed peer answered that it does not know this member: it was removed from the
        /// peer's membership, or never added.
        not_a_member: bool,
    },
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub(crate) frames_sent: u64,
    pub(crate) frames_received: u64,
    pub(crate) frames_dropped: u64,
    pub(crate) handshakes_rejected: u64,
    pub(crate) connections_refused: u64,
}

impl PeerStats {
    /// Frames fully handed to the kernel (or to rustls).
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }
    /// Frames delivered as [`PeerEvent::Frame`].
    pub fn frames_received(&self) -> u64 {
        self.frames_received
    }
    /// Frames refused by [`crate::peer::PeerTransport::send`]: unknown peer, empty or oversized frame, or
    /// full queue.
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped
    }
    /// Inbound connections closed before finishing the handshake (garbage, wrong cluster
    /// token, unknown member, TLS failure, timeout).
    pub fn handshakes_rejected(&self) -> u64 {
        self.handshakes_rejected
    }
    /// Inbound connections refused because `connections_max` were open.
    pub fn connections_refused(&self) -> u64 {
        self.connections_refused
    }
}
