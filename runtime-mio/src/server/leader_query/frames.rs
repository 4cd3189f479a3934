//! The frames of leader queries on the peer link (the layout is in the parent module's
//! documentation), checked as they are read: a bad frame is an error, never a panic.

use bytes::{BufMut as _, Bytes, BytesMut};
use prost::Message as _;
use tally_kvstore::proto;

use crate::client::{Code as GrpcCode, Status};
use crate::peer::FrameKind;
use crate::server::rpc::status::{status, status_no_leader};

const QUERY_TAG: u8 = FrameKind::LeaseQuery.tag();
const PROMOTE_TAG: u8 = FrameKind::PromoteQuery.tag();
const ANSWER_TAG: u8 = FrameKind::LeaderAnswer.tag();

/// Tag and query id.
const HEAD_BYTES: usize = 1 + 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum AnswerStatus {
    Ok = 0,
    /// The peer asked is not the lease primary or leader (any more).
    NotLeader = 1,
    /// The answer (a lease with very many keys) would not fit in one peer frame.
    TooLarge = 2,
    /// The leader refused the call, with the gRPC status that follows.
    Refused = 3,
}

impl AnswerStatus {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Ok),
            1 => Some(Self::NotLeader),
            2 => Some(Self::TooLarge),
            3 => Some(Self::Refused),
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
    /// A promotion's answer carried a body, or a refusal no valid code and message.
    BadBody,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "truncated leader query frame"),
            Self::WrongTag(b) => write!(f, "leader query frame with tag {b:#x}"),
            Self::UnknownStatus(b) => write!(f, "leader answer with unknown status {b}"),
            Self::Protobuf(e) => write!(f, "leader query frame with a bad protobuf: {e}"),
            Self::BadBody => write!(f, "leader answer with a malformed body"),
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

pub(super) fn encode_promote_query(id: u64, learner: u64) -> Bytes {
    let mut frame = BytesMut::with_capacity(HEAD_BYTES + 8);
    frame.put_u8(PROMOTE_TAG);
    frame.put_u64_le(id);
    frame.put_u64_le(learner);
    frame.freeze()
}

pub(super) fn encode_answer(id: u64, status: AnswerStatus, response: Option<&[u8]>) -> Bytes {
    assert!(
        status != AnswerStatus::Refused,
        "a refusal is encoded by encode_refusal"
    );
    let body = response.unwrap_or_default();
    assert!(
        status == AnswerStatus::Ok || body.is_empty(),
        "only an Ok answer carries a response"
    );
    let mut frame = BytesMut::with_capacity(HEAD_BYTES + 1 + body.len());
    frame.put_u8(ANSWER_TAG);
    frame.put_u64_le(id);
    frame.put_u8(status as u8);
    frame.put_slice(body);
    frame.freeze()
}

pub(super) fn encode_refusal(id: u64, refused: &Status) -> Bytes {
    let code = u8::try_from(refused.code().as_u32()).expect("gRPC codes fit a byte");
    let message = refused.message().as_bytes();
    let mut frame = BytesMut::with_capacity(HEAD_BYTES + 2 + message.len());
    frame.put_u8(ANSWER_TAG);
    frame.put_u64_le(id);
    frame.put_u8(AnswerStatus::Refused as u8);
    frame.put_u8(code);
    frame.put_slice(message);
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

/// The query id and the learner's member id.
pub(super) fn decode_promote_query(frame: &[u8]) -> Result<(u64, u64), FrameError> {
    let (id, body) = split_head(frame, PROMOTE_TAG)?;
    let learner = body.try_into().map_err(|_| FrameError::Truncated)?;
    Ok((id, u64::from_le_bytes(learner)))
}

/// The query id, the status, and the rest of the frame (see [`Answer::from_parts`]).
pub(super) fn decode_answer(frame: &[u8]) -> Result<(u64, AnswerStatus, &[u8]), FrameError> {
    let (id, rest) = split_head(frame, ANSWER_TAG)?;
    let (&status_byte, body) = rest.split_first().ok_or(FrameError::Truncated)?;
    let status =
        AnswerStatus::from_byte(status_byte).ok_or(FrameError::UnknownStatus(status_byte))?;
    Ok((id, status, body))
}

/// What a follower asked the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QueryKind {
    LeaseTimeToLive,
    Promote { learner: u64 },
}

/// An answer checked against the query it answers.
#[derive(Debug, PartialEq)]
pub(super) enum Answer<'a> {
    /// The encoded `LeaseTimeToLiveResponse`, or nothing for a promotion (proposed).
    Ok(&'a [u8]),
    Failed(Status),
}

impl<'a> Answer<'a> {
    /// Checked here so that a bad answer fails the query instead of reaching the client.
    pub(super) fn from_parts(
        kind: QueryKind,
        answer_status: AnswerStatus,
        body: &'a [u8],
    ) -> Result<Self, FrameError> {
        match answer_status {
            AnswerStatus::Ok => {
                match kind {
                    QueryKind::LeaseTimeToLive => {
                        proto::LeaseTimeToLiveResponse::decode(body)
                            .map_err(FrameError::Protobuf)?;
                    }
                    QueryKind::Promote { .. } if !body.is_empty() => {
                        return Err(FrameError::BadBody);
                    }
                    QueryKind::Promote { .. } => {}
                }
                Ok(Self::Ok(body))
            }
            AnswerStatus::NotLeader => Ok(Self::Failed(status_no_leader())),
            AnswerStatus::TooLarge => Ok(Self::Failed(status(
                GrpcCode::ResourceExhausted,
                "etcdserver: lease time-to-live answer too large to forward",
            ))),
            AnswerStatus::Refused => {
                let (&code, message) = body.split_first().ok_or(FrameError::BadBody)?;
                let message = std::str::from_utf8(message).map_err(|_| FrameError::BadBody)?;
                Ok(Self::Failed(Status::from_code_u32(
                    u32::from(code),
                    message,
                )))
            }
        }
    }
}

/// `decoded`'s value, or `None` after a log line naming the peer: a bad frame is dropped.
pub(super) fn dropped_if_bad<T>(from: u64, decoded: Result<T, FrameError>) -> Option<T> {
    decoded
        .map_err(|e| eprintln!("tallyd: peer {from:x}: {e}; dropped"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::rpc::status_from_propose;

    #[test]
    fn a_query_round_trips() {
        let request = proto::LeaseTimeToLiveRequest { id: 42, keys: true };
        let frame = encode_query(7, &request);
        assert_eq!(decode_query(&frame), Ok((7, request)));
        let frame = encode_promote_query(8, 0xfeed);
        assert_eq!(decode_promote_query(&frame), Ok((8, 0xfeed)));
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
        let (id, answer_status, body) = decode_answer(&frame).expect("answer");
        assert_eq!(
            (id, answer_status, body),
            (9, AnswerStatus::Ok, &response[..])
        );
        assert_eq!(
            Answer::from_parts(QueryKind::LeaseTimeToLive, answer_status, body),
            Ok(Answer::Ok(&response[..]))
        );
        let frame = encode_answer(9, AnswerStatus::NotLeader, None);
        assert_eq!(
            decode_answer(&frame),
            Ok((9, AnswerStatus::NotLeader, &[][..]))
        );
        let frame = encode_answer(10, AnswerStatus::Ok, None);
        let (_, answer_status, body) = decode_answer(&frame).expect("answer");
        let promote = QueryKind::Promote { learner: 3 };
        assert_eq!(
            Answer::from_parts(promote, answer_status, body),
            Ok(Answer::Ok(&[][..]))
        );
    }

    #[test]
    fn a_refusal_carries_the_leaders_status() {
        let refused = status_from_propose(tally_core::ProposeError::LearnerNotReady);
        let frame = encode_refusal(11, &refused);
        let (id, answer_status, body) = decode_answer(&frame).expect("answer");
        assert_eq!((id, answer_status), (11, AnswerStatus::Refused));
        let Ok(Answer::Failed(status)) =
            Answer::from_parts(QueryKind::Promote { learner: 3 }, answer_status, body)
        else {
            panic!("a refusal is a failed answer");
        };
        assert_eq!(status.code(), GrpcCode::FailedPrecondition);
        assert_eq!(
            status.message(),
            "etcdserver: can only promote a learner member which is in sync with leader"
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
        let promote = encode_promote_query(1, 2);
        assert_eq!(
            decode_promote_query(&promote[..promote.len() - 1]),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            decode_promote_query(&[&promote[..], &[0]].concat()),
            Err(FrameError::Truncated)
        );
        let head = [ANSWER_TAG, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_answer(&head), Err(FrameError::Truncated));
        let mut unknown = head.to_vec();
        unknown.push(9);
        assert_eq!(decode_answer(&unknown), Err(FrameError::UnknownStatus(9)));
        let lease = QueryKind::LeaseTimeToLive;
        let promote = QueryKind::Promote { learner: 1 };
        assert!(matches!(
            Answer::from_parts(lease, AnswerStatus::Ok, &[0xff, 0xff]),
            Err(FrameError::Protobuf(_))
        ));
        assert_eq!(
            Answer::from_parts(promote, AnswerStatus::Ok, &[1]),
            Err(FrameError::BadBody)
        );
        for body in [&[][..], &[9, 0xff, 0xfe][..]] {
            assert_eq!(
                Answer::from_parts(promote, AnswerStatus::Refused, body),
                Err(FrameError::BadBody)
            );
        }
        // A query is not an answer.
        let query = encode_query(1, &proto::LeaseTimeToLiveRequest::default());
        assert_eq!(decode_answer(&query), Err(FrameError::WrongTag(QUERY_TAG)));
    }
}
