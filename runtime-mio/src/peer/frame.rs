//! Every kind of frame one member sends another after the handshake, told apart by the
//! frame's first byte. This is the one table of those bytes: the modules that encode a kind
//! take its tag from here, and the transport classifies every frame it receives by it.
//!
//! A frame whose first byte is in no row (a kind added by a newer release) is not dropped in
//! silence: the transport answers it with [`FrameKind::Unsupported`] naming the byte, and the
//! sender's loop hears [`super::PeerEvent::Unsupported`], so a rolling upgrade that mixes
//! releases fails a request at once instead of leaving it to time out.

use bytes::{BufMut as _, Bytes, BytesMut};

/// The kinds of frame, each with its first byte ([`FrameKind::tag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A Raft message in the core's codec, whose first byte is the codec's version.
    Raft,
    /// A piece of a snapshot message too large for one frame (tallyd's `snapshots::transfer`).
    SnapshotChunk,
    /// A follower asks the leader a lease's remaining TTL (tallyd's `leader_query`).
    LeaseQuery,
    /// A follower asks the leader whether a learner may be promoted.
    PromoteQuery,
    /// The leader's answer to a lease or promote query.
    LeaderAnswer,
    /// A starting member asks what a peer knows of it (tallyd's `start_check`).
    StartQuery,
    /// The answer to a start query.
    StartAnswer,
    /// "I do not know the frame kind whose first byte follows": the answer to a frame of a
    /// kind not in this table.
    Unsupported,
}

/// The table: every kind and its first byte. Tags are distinct (checked below and by a test).
const TAGS: [(FrameKind, u8); 8] = [
    (FrameKind::Raft, tally_core::codec::CODEC_VERSION),
    (FrameKind::LeaseQuery, 0xC6),
    (FrameKind::LeaderAnswer, 0xC7),
    (FrameKind::SnapshotChunk, 0xC8),
    (FrameKind::PromoteQuery, 0xC9),
    (FrameKind::StartQuery, 0xCA),
    (FrameKind::StartAnswer, 0xCB),
    (FrameKind::Unsupported, 0xCF),
];

const _: () = {
    let mut i = 0;
    while i < TAGS.len() {
        let mut j = i + 1;
        while j < TAGS.len() {
            assert!(TAGS[i].1 != TAGS[j].1, "two frame kinds share a tag");
            j += 1;
        }
        i += 1;
    }
};

impl FrameKind {
    /// The first byte of a frame of this kind.
    pub const fn tag(self) -> u8 {
        let mut i = 0;
        while i < TAGS.len() {
            if TAGS[i].0 as u8 == self as u8 {
                return TAGS[i].1;
            }
            i += 1;
        }
        panic!("every frame kind is in the table")
    }

    /// The kind whose first byte is `tag`; `None` for a byte in no row.
    pub fn of_tag(tag: u8) -> Option<FrameKind> {
        TAGS.iter().find(|(_, t)| *t == tag).map(|(kind, _)| *kind)
    }
}

/// Bytes of an [`FrameKind::Unsupported`] frame: its tag and the tag it does not know.
const UNSUPPORTED_BYTES: usize = 2;

/// The answer to a frame whose kind (first byte `unknown_tag`) this member does not know.
pub(crate) fn encode_unsupported(unknown_tag: u8) -> Bytes {
    let mut frame = BytesMut::with_capacity(UNSUPPORTED_BYTES);
    frame.put_u8(FrameKind::Unsupported.tag());
    frame.put_u8(unknown_tag);
    frame.freeze()
}

/// The tag an [`FrameKind::Unsupported`] frame names; `None` for a malformed one.
pub(crate) fn decode_unsupported(frame: &[u8]) -> Option<u8> {
    match frame {
        [tag, unknown] if *tag == FrameKind::Unsupported.tag() => Some(*unknown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_tag_and_every_tag_one_kind() {
        for (kind, tag) in TAGS {
            assert_eq!(kind.tag(), tag);
            assert_eq!(FrameKind::of_tag(tag), Some(kind));
        }
        let known = (0..=u8::MAX)
            .filter(|t| FrameKind::of_tag(*t).is_some())
            .count();
        assert_eq!(known, TAGS.len());
        assert_eq!(FrameKind::of_tag(0xEE), None);
    }

    #[test]
    fn unsupported_frames_round_trip_and_malformed_ones_are_refused() {
        assert_eq!(decode_unsupported(&encode_unsupported(0xEE)), Some(0xEE));
        assert_eq!(decode_unsupported(&[FrameKind::Unsupported.tag()]), None);
        assert_eq!(decode_unsupported(&[FrameKind::Raft.tag(), 0xEE]), None);
        assert_eq!(
            decode_unsupported(&[FrameKind::Unsupported.tag(), 1, 2]),
            None
        );
    }
}
