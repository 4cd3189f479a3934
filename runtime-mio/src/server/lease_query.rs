//! A follower's `LeaseTimeToLive`, answered by the leader over the peer link.
//!
//! A lease's clock runs on the leader only (keep-alives sent to it are not replicated), so a
//! follower that answered from its own store would report the granted or last checkpointed TTL
//! of a lease that may be about to expire. etcd forwards the call to the leader; so do we, as a
//! tallyd-level frame on the one peer connection, beside Raft's messages and snapshot chunks:
//!
//! - query: [`QUERY_TAG`], query id (u64 LE), the encoded `LeaseTimeToLiveRequest`;
//! - answer: [`ANSWER_TAG`], query id (u64 LE), an [`AnswerStatus`] byte, then (when `Ok`) the
//!   leader's encoded `LeaseTimeToLiveResponse`.
//!
//! A query the leader cannot answer (it lost the lead, or the answer is over a peer frame) gets a
//! status the follower turns into etcd's error; a lost frame ends in the follower's request
//! timeout.

use std::collections::HashMap;
use std::time::Instant;

use bytes::{BufMut as _, Bytes, BytesMut};
use prost::Message as _;
use tally_kvstore::proto;

use super::event_loop::{REQUEST_TIMEOUT, Server};
use super::rpc::{status, status_no_leader, status_timeout};
use crate::grpc::{CallId, Code as GrpcCode};

pub(super) const QUERY_TAG: u8 = 0xC6;
pub(super) const ANSWER_TAG: u8 = 0xC7;
const _: () = assert!(QUERY_TAG != tally_core::codec::CODEC_VERSION);
const _: () = assert!(ANSWER_TAG != tally_core::codec::CODEC_VERSION);
const _: () = assert!(QUERY_TAG != super::snapshot_transfer::CHUNK_TAG);
const _: () = assert!(ANSWER_TAG != super::snapshot_transfer::CHUNK_TAG);
const _: () = assert!(QUERY_TAG != super::snapshot_transfer::LEGACY_CHUNK_TAG);
const _: () = assert!(ANSWER_TAG != super::snapshot_transfer::LEGACY_CHUNK_TAG);

/// Tag and query id.
const HEAD_BYTES: usize = 1 + 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum AnswerStatus {
    Ok = 0,
    /// The peer asked is not the lease primary (any more).
    NotLeader = 1,
    /// The answer (a lease with very many keys) would not fit in one peer frame.
    TooLarge = 2,
}

impl AnswerStatus {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Ok),
            1 => Some(Self::NotLeader),
            2 => Some(Self::TooLarge),
            _ => None,
        }
    }
}

/// Why a query or answer frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(super) enum FrameError {
    Truncated,
    /// The frame's first byte is not the kind's tag.
    WrongTag(u8),
    UnknownStatus(u8),
    Protobuf(prost::DecodeError),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "truncated lease query frame"),
            Self::WrongTag(b) => write!(f, "lease query frame with tag {b:#x}"),
            Self::UnknownStatus(b) => write!(f, "lease answer with unknown status {b}"),
            Self::Protobuf(e) => write!(f, "lease query frame with a bad protobuf: {e}"),
        }
    }
}

pub(super) fn encode_query(id: u64, request: &proto::LeaseTimeToLiveRequest) -> Bytes {
    let mut frame = BytesMut::with_capacity(HEAD_BYTES + request.encoded_len());
    frame.put_u8(QUERY_TAG);
    frame.put_u64_le(id);
    request
        .encode(&mut frame)
        .expect("BytesMut grows to fit a message");
    frame.freeze()
}

pub(super) fn encode_answer(id: u64, status: AnswerStatus, response: Option<&[u8]>) -> Bytes {
    assert_eq!(
        status == AnswerStatus::Ok,
        response.is_some(),
        "an answer carries a response exactly when it is Ok"
    );
    let body = response.unwrap_or_default();
    let mut frame = BytesMut::with_capacity(HEAD_BYTES + 1 + body.len());
    frame.put_u8(ANSWER_TAG);
    frame.put_u64_le(id);
    frame.put_u8(status as u8);
    frame.put_slice(body);
    frame.freeze()
}

fn split_head(frame: &[u8], tag: u8) -> Result<(u64, &[u8]), FrameError> {
    if frame.len() < HEAD_BYTES {
        return Err(FrameError::Truncated);
    }
    if frame[0] != tag {
        return Err(FrameError::WrongTag(frame[0]));
    }
    let id = u64::from_le_bytes(frame[1..HEAD_BYTES].try_into().expect("8 bytes"));
    Ok((id, &frame[HEAD_BYTES..]))
}

pub(super) fn decode_query(
    frame: &[u8],
) -> Result<(u64, proto::LeaseTimeToLiveRequest), FrameError> {
    let (id, body) = split_head(frame, QUERY_TAG)?;
    let request = proto::LeaseTimeToLiveRequest::decode(body).map_err(FrameError::Protobuf)?;
    Ok((id, request))
}

/// The query id, the status, and the encoded response (empty unless `Ok`).
pub(super) fn decode_answer(frame: &[u8]) -> Result<(u64, AnswerStatus, &[u8]), FrameError> {
    let (id, rest) = split_head(frame, ANSWER_TAG)?;
    let (&status_byte, body) = rest.split_first().ok_or(FrameError::Truncated)?;
    let status =
        AnswerStatus::from_byte(status_byte).ok_or(FrameError::UnknownStatus(status_byte))?;
    if status == AnswerStatus::Ok {
        // Checked here so that a bad answer fails the query instead of reaching the client.
        proto::LeaseTimeToLiveResponse::decode(body).map_err(FrameError::Protobuf)?;
    }
    Ok((id, status, body))
}

/// A follower's call waiting for the leader's answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct LeaseQuery {
    call: CallId,
    /// The member asked; an answer from anyone else is ignored.
    leader: u64,
    deadline: Instant,
}

/// Queries in flight, keyed by query id. At most one per open call, so the gRPC server's
/// stream limits bound it.
pub(super) type LeaseQueries = HashMap<u64, LeaseQuery>;

impl Server {
    /// `LeaseTimeToLive`: local on the lease primary, else asked of the leader.
    pub(super) fn lease_time_to_live(
        &mut self,
        call: CallId,
        request: proto::LeaseTimeToLiveRequest,
    ) {
        let leader = self.leader;
        if self.kv.is_primary() || leader == self.node.id() {
            let now = self.now_ms();
            let response = self.kv.lease_time_to_live(&request, now);
            self.reply(call, response);
            return;
        }
        if leader == tally_core::NO_NODE {
            self.reply_error(call, status_no_leader());
            return;
        }
        let id = self.next_request_id();
        if !self.peers.send(leader, encode_query(id, &request)) {
            self.reply_error(call, status_no_leader());
            return;
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        self.lease_queries.insert(
            id,
            LeaseQuery {
                call,
                leader,
                deadline,
            },
        );
    }

    /// On the leader: answers a follower's query.
    pub(super) fn answer_lease_query(&mut self, from: u64, frame: &[u8]) {
        let (id, request) = match decode_query(frame) {
            Ok(query) => query,
            Err(e) => {
                eprintln!("tallyd: peer {from:x}: {e}; dropped");
                return;
            }
        };
        if !self.kv.is_primary() {
            self.peers
                .send(from, encode_answer(id, AnswerStatus::NotLeader, None));
            return;
        }
        let now = self.now_ms();
        let response = self.kv.lease_time_to_live(&request, now);
        let response = self.encode(response);
        if !self
            .peers
            .send(from, encode_answer(id, AnswerStatus::Ok, Some(&response)))
        {
            self.peers
                .send(from, encode_answer(id, AnswerStatus::TooLarge, None));
        }
    }

    /// On the follower: the leader's answer to one of its queries.
    pub(super) fn finish_lease_query(&mut self, from: u64, frame: &[u8]) {
        let (id, answer_status, body) = match decode_answer(frame) {
            Ok(answer) => answer,
            Err(e) => {
                eprintln!("tallyd: peer {from:x}: {e}; dropped");
                return;
            }
        };
        let Some(query) = self.lease_queries.get(&id).copied() else {
            return; // timed out already
        };
        if query.leader != from {
            eprintln!(
                "tallyd: peer {from:x} answered a lease query sent to {:x}; dropped",
                query.leader
            );
            return;
        }
        self.lease_queries.remove(&id);
        match answer_status {
            AnswerStatus::Ok => self.reply_encoded(query.call, Bytes::copy_from_slice(body)),
            AnswerStatus::NotLeader => self.reply_error(query.call, status_no_leader()),
            AnswerStatus::TooLarge => self.reply_error(
                query.call,
                status(
                    GrpcCode::ResourceExhausted,
                    "etcdserver: lease time-to-live answer too large to forward",
                ),
            ),
        }
    }

    pub(super) fn expire_lease_queries(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .lease_queries
            .iter()
            .filter(|(_, q)| q.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(query) = self.lease_queries.remove(&id) {
                self.reply_error(query.call, status_timeout());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips() {
        let request = proto::LeaseTimeToLiveRequest { id: 42, keys: true };
        let frame = encode_query(7, &request);
        assert_eq!(decode_query(&frame), Ok((7, request)));
    }

    #[test]
    fn an_answer_round_trips_with_and_without_a_response() {
        let response = proto::LeaseTimeToLiveResponse {
            id: 42,
            ttl: 12,
            granted_ttl: 30,
            ..Default::default()
        }
        .encode_to_vec();
        let frame = encode_answer(9, AnswerStatus::Ok, Some(&response));
        assert_eq!(
            decode_answer(&frame),
            Ok((9, AnswerStatus::Ok, &response[..]))
        );
        let frame = encode_answer(9, AnswerStatus::NotLeader, None);
        assert_eq!(
            decode_answer(&frame),
            Ok((9, AnswerStatus::NotLeader, &[][..]))
        );
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(decode_query(&[QUERY_TAG, 1, 2]), Err(FrameError::Truncated));
        assert_eq!(decode_query(&[]), Err(FrameError::Truncated));
        assert!(matches!(
            decode_query(&[QUERY_TAG, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(FrameError::Protobuf(_))
        ));
        let head = [ANSWER_TAG, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_answer(&head), Err(FrameError::Truncated));
        let mut unknown = head.to_vec();
        unknown.push(9);
        assert_eq!(decode_answer(&unknown), Err(FrameError::UnknownStatus(9)));
        let mut bad_body = head.to_vec();
        bad_body.extend_from_slice(&[0, 0xff, 0xff]);
        assert!(matches!(
            decode_answer(&bad_body),
            Err(FrameError::Protobuf(_))
        ));
        // A query is not an answer.
        let query = encode_query(1, &proto::LeaseTimeToLiveRequest::default());
        assert_eq!(decode_answer(&query), Err(FrameError::WrongTag(QUERY_TAG)));
    }
}
