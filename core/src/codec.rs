//! The versioned binary codec for [`Message`]s.
//!
//! Layout (integers are LEB128 varints unless noted):
//! `version:u8 kind:u8 from to term body…`. Entries are `index term kind:u8 len bytes`.
//! Decoding is total: every input gives `Ok` or a [`DecodeError`], and never panics or
//! allocates more than the input justifies.

use alloc::vec::Vec;
use bytes::{BufMut, Bytes};
use core::fmt;

use crate::message::{Body, Message};
use crate::types::{
    ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, NodeId, Snapshot, SnapshotMeta,
};

/// The codec version written by this build.
pub const CODEC_VERSION: u8 = 1;

/// Smallest encoded entry: three one-byte varints (index, term, length) and a kind byte.
const ENTRY_MIN_BYTES: usize = 4;

/// Why bytes are not a valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    Truncated,
    /// A codec version this build does not read.
    UnsupportedVersion(u8),
    /// A message kind byte this build does not know.
    UnknownKind(u8),
    /// An entry kind byte this build does not know.
    UnknownEntryKind(u8),
    /// A varint longer than ten bytes, or above `u64::MAX`.
    VarintOverflow,
    /// A length or count larger than the remaining input.
    LengthOutOfRange,
    /// A boolean that is neither 0 nor 1.
    InvalidBool(u8),
    /// Bytes left after a complete message.
    TrailingBytes,
    /// [`decode_snapshot_head`] was given a message of another kind.
    NotSnapshot(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("message truncated"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported codec version {v}"),
            DecodeError::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            DecodeError::UnknownEntryKind(k) => write!(f, "unknown entry kind {k}"),
            DecodeError::VarintOverflow => f.write_str("varint overflows u64"),
            DecodeError::LengthOutOfRange => f.write_str("length exceeds the message"),
            DecodeError::InvalidBool(b) => write!(f, "invalid boolean byte {b}"),
            DecodeError::TrailingBytes => f.write_str("trailing bytes after message"),
            DecodeError::NotSnapshot(k) => write!(f, "message kind {k} is not a snapshot"),
        }
    }
}

impl core::error::Error for DecodeError {}

const KIND_PRE_VOTE: u8 = 1;
const KIND_PRE_VOTE_RESP: u8 = 2;
const KIND_VOTE: u8 = 3;
const KIND_VOTE_RESP: u8 = 4;
const KIND_APPEND: u8 = 5;
const KIND_APPEND_RESP: u8 = 6;
const KIND_HEARTBEAT: u8 = 7;
const KIND_HEARTBEAT_RESP: u8 = 8;
const KIND_SNAPSHOT: u8 = 9;
const KIND_PROPOSE: u8 = 10;
const KIND_READ_INDEX: u8 = 11;
const KIND_READ_INDEX_RESP: u8 = 12;
const KIND_TIMEOUT_NOW: u8 = 13;

/// Appends the encoding of `message` to `out`.
pub fn encode(message: &Message, out: &mut impl BufMut) {
    put_message_head(message, out);
    encode_body(&message.body, out);
}

/// What every message starts with: `version kind from to term`.
fn put_message_head(message: &Message, out: &mut impl BufMut) {
    out.put_u8(CODEC_VERSION);
    out.put_u8(kind_byte(&message.body));
    put_varint(out, message.from);
    put_varint(out, message.to);
    put_varint(out, message.term);
}

/// Encodes `message` into a new buffer.
pub fn encode_to_vec(message: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message_payload_bytes(message));
    encode(message, &mut out);
    out
}

/// Encodes a snapshot message in two parts, `(head, data)`: its encoding is `head` followed by
/// the snapshot's data, so a runtime can send a snapshot larger than any one buffer (or frame)
/// without copying its data. `None` for every other kind of message.
pub fn encode_snapshot_parts(message: &Message) -> Option<(Vec<u8>, Bytes)> {
    let data = message.snapshot()?.data();
    let head = encode_snapshot_head(message, data.len() as u64)?;
    Some((head, data.clone()))
}

/// The head of a snapshot message's encoding (see [`encode_snapshot_parts`]) as if its data
/// were `data_bytes` long, whatever data it holds: for a runtime that streams the data from
/// its own storage, e.g. for a message whose data the core released. `None` for every other
/// kind of message.
pub fn encode_snapshot_head(message: &Message, data_bytes: u64) -> Option<Vec<u8>> {
    let Body::Snapshot { snapshot } = &message.body else {
        return None;
    };
    let mut head = Vec::with_capacity(64);
    put_message_head(message, &mut head);
    put_snapshot_meta(&mut head, snapshot);
    put_varint(&mut head, data_bytes);
    Some(head)
}

/// A snapshot message's head, decoded before its data arrived (see [`decode_snapshot_head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHead {
    message: Message,
    data_bytes: u64,
    head_bytes: usize,
}

impl SnapshotHead {
    /// The message, its snapshot without data: a runtime that keeps the data in its own
    /// storage steps this into the core and supplies the data itself when the core's
    /// `Persist` and `ApplySnapshot` name that snapshot.
    pub fn into_message(self) -> Message {
        self.message
    }

    /// The message, its snapshot without data.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Length of the data that follows the head.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Length of the head: the data starts at this offset of the encoding.
    pub fn head_bytes(&self) -> usize {
        self.head_bytes
    }
}

/// Decodes the head of a snapshot message's encoding (what [`encode_snapshot_head`] writes)
/// from the first bytes of the encoding, so a runtime can stream a snapshot larger than memory
/// to its storage as it arrives. Input shorter than the head fails (`Truncated`, or
/// `LengthOutOfRange` inside a list of ids); [`DecodeError::NotSnapshot`] means the message is
/// of another kind.
pub fn decode_snapshot_head(input: &Bytes) -> Result<SnapshotHead, DecodeError> {
    let mut reader = Reader { input, position: 0 };
    let (kind, from, to, term) = reader.message_head()?;
    if kind != KIND_SNAPSHOT {
        return Err(DecodeError::NotSnapshot(kind));
    }
    let meta = reader.snapshot_meta()?;
    let data_bytes = reader.varint()?;
    let snapshot = Snapshot::new(meta, Bytes::new());
    Ok(SnapshotHead {
        message: Message::new(from, to, term, Body::Snapshot { snapshot }),
        data_bytes,
        head_bytes: reader.position,
    })
}

fn message_payload_bytes(message: &Message) -> usize {
    let entries: usize = message.entries().iter().map(|e| e.data().len() + 16).sum();
    entries + message.snapshot().map_or(0, |s| s.data().len() + 64)
}

/// Decodes one whole message. Entry payloads share `input`'s buffer (no copy).
pub fn decode(input: &Bytes) -> Result<Message, DecodeError> {
    let mut reader = Reader { input, position: 0 };
    let (kind, from, to, term) = reader.message_head()?;
    let body = decode_body(kind, &mut reader)?;
    if reader.position != input.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(Message::new(from, to, term, body))
}

fn kind_byte(body: &Body) -> u8 {
    match body {
        Body::PreVote { .. } => KIND_PRE_VOTE,
        Body::PreVoteResp { .. } => KIND_PRE_VOTE_RESP,
        Body::Vote { .. } => KIND_VOTE,
        Body::VoteResp { .. } => KIND_VOTE_RESP,
        Body::Append { .. } => KIND_APPEND,
        Body::AppendResp { .. } => KIND_APPEND_RESP,
        Body::Heartbeat { .. } => KIND_HEARTBEAT,
        Body::HeartbeatResp { .. } => KIND_HEARTBEAT_RESP,
        Body::Snapshot { .. } => KIND_SNAPSHOT,
        Body::Propose { .. } => KIND_PROPOSE,
        Body::ReadIndex { .. } => KIND_READ_INDEX,
        Body::ReadIndexResp { .. } => KIND_READ_INDEX_RESP,
        Body::TimeoutNow => KIND_TIMEOUT_NOW,
    }
}

fn encode_body(body: &Body, out: &mut impl BufMut) {
    match body {
        Body::PreVote {
            last_index,
            last_term,
        } => {
            put_varint(out, *last_index);
            put_varint(out, *last_term);
        }
        Body::PreVoteResp { reject } | Body::VoteResp { reject } => out.put_u8(u8::from(*reject)),
        Body::Vote {
            last_index,
            last_term,
            transfer,
        } => {
            put_varint(out, *last_index);
            put_varint(out, *last_term);
            out.put_u8(u8::from(*transfer));
        }
        Body::Append {
            prev_index,
            prev_term,
            commit,
            entries,
        } => {
            put_varint(out, *prev_index);
            put_varint(out, *prev_term);
            put_varint(out, *commit);
            put_entries(out, entries);
        }
        Body::AppendResp {
            reject,
            index,
            hint_index,
            hint_term,
        } => {
            out.put_u8(u8::from(*reject));
            put_varint(out, *index);
            put_varint(out, *hint_index);
            put_varint(out, *hint_term);
        }
        Body::Heartbeat { commit, context } => {
            put_varint(out, *commit);
            put_varint(out, *context);
        }
        Body::HeartbeatResp { context } => put_varint(out, *context),
        Body::Snapshot { snapshot } => put_snapshot(out, snapshot),
        Body::Propose { entries } => put_entries(out, entries),
        Body::ReadIndex { request } => put_varint(out, *request),
        Body::ReadIndexResp { request, index } => {
            put_varint(out, *request);
            put_varint(out, *index);
        }
        Body::TimeoutNow => {}
    }
}

fn decode_body(kind: u8, reader: &mut Reader<'_>) -> Result<Body, DecodeError> {
    let body = match kind {
        KIND_PRE_VOTE => Body::PreVote {
            last_index: reader.varint()?,
            last_term: reader.varint()?,
        },
        KIND_PRE_VOTE_RESP => Body::PreVoteResp {
            reject: reader.bool()?,
        },
        KIND_VOTE => Body::Vote {
            last_index: reader.varint()?,
            last_term: reader.varint()?,
            transfer: reader.bool()?,
        },
        KIND_VOTE_RESP => Body::VoteResp {
            reject: reader.bool()?,
        },
        KIND_APPEND => Body::Append {
            prev_index: reader.varint()?,
            prev_term: reader.varint()?,
            commit: reader.varint()?,
            entries: reader.entries()?,
        },
        KIND_APPEND_RESP => Body::AppendResp {
            reject: reader.bool()?,
            index: reader.varint()?,
            hint_index: reader.varint()?,
            hint_term: reader.varint()?,
        },
        KIND_HEARTBEAT => Body::Heartbeat {
            commit: reader.varint()?,
            context: reader.varint()?,
        },
        KIND_HEARTBEAT_RESP => Body::HeartbeatResp {
            context: reader.varint()?,
        },
        KIND_SNAPSHOT => Body::Snapshot {
            snapshot: reader.snapshot()?,
        },
        KIND_PROPOSE => Body::Propose {
            entries: reader.entries()?,
        },
        KIND_READ_INDEX => Body::ReadIndex {
            request: reader.varint()?,
        },
        KIND_READ_INDEX_RESP => Body::ReadIndexResp {
            request: reader.varint()?,
            index: reader.varint()?,
        },
        KIND_TIMEOUT_NOW => Body::TimeoutNow,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(body)
}

fn put_varint(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

fn put_bytes(out: &mut impl BufMut, data: &[u8]) {
    put_varint(out, data.len() as u64);
    out.put_slice(data);
}

fn put_entries(out: &mut impl BufMut, entries: &[Entry]) {
    put_varint(out, entries.len() as u64);
    for entry in entries {
        put_varint(out, entry.index());
        put_varint(out, entry.term());
        out.put_u8(entry.kind().to_u8());
        put_bytes(out, entry.data());
    }
}

fn put_ids(out: &mut impl BufMut, ids: &[NodeId]) {
    put_varint(out, ids.len() as u64);
    for &id in ids {
        put_varint(out, id);
    }
}

fn put_snapshot(out: &mut impl BufMut, snapshot: &Snapshot) {
    put_snapshot_meta(out, snapshot);
    put_bytes(out, snapshot.data());
}

/// A snapshot's fields before its data.
fn put_snapshot_meta(out: &mut impl BufMut, snapshot: &Snapshot) {
    let meta = snapshot.meta();
    put_varint(out, meta.index());
    put_varint(out, meta.term());
    put_ids(out, meta.conf().voters());
    put_ids(out, meta.conf().learners());
}

struct Reader<'a> {
    input: &'a Bytes,
    position: usize,
}

impl Reader<'_> {
    /// What [`put_message_head`] writes: `(kind, from, to, term)` after the version.
    fn message_head(&mut self) -> Result<(u8, NodeId, NodeId, u64), DecodeError> {
        let version = self.u8()?;
        if version != CODEC_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        Ok((self.u8()?, self.varint()?, self.varint()?, self.varint()?))
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let byte = *self
            .input
            .get(self.position)
            .ok_or(DecodeError::Truncated)?;
        self.position += 1;
        Ok(byte)
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidBool(other)),
        }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// A count of items each at least `item_min_bytes` long: bounded by the remaining input.
    fn count(&mut self, item_min_bytes: usize) -> Result<usize, DecodeError> {
        let count = self.varint()?;
        let limit = self.remaining() / item_min_bytes;
        match usize::try_from(count) {
            Ok(count) if count <= limit => Ok(count),
            _ => Err(DecodeError::LengthOutOfRange),
        }
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.count(1)?;
        let data = self.input.slice(self.position..self.position + len);
        self.position += len;
        Ok(data)
    }

    fn entries(&mut self) -> Result<Vec<Entry>, DecodeError> {
        let count = self.count(ENTRY_MIN_BYTES)?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let index = self.varint()?;
            let term = self.varint()?;
            let kind_byte = self.u8()?;
            let kind =
                EntryKind::from_u8(kind_byte).ok_or(DecodeError::UnknownEntryKind(kind_byte))?;
            // Each entry gets its own allocation instead of a slice of the message: a state
            // machine that keeps entry bytes (the kvstore keeps values by reference) would
            // otherwise pin whole receive buffers, long after most of their entries are gone.
            let data = Bytes::copy_from_slice(&self.bytes()?);
            entries.push(Entry::new(index, term, kind, data));
        }
        Ok(entries)
    }

    fn ids(&mut self) -> Result<Vec<NodeId>, DecodeError> {
        let count = self.count(1)?;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            ids.push(self.varint()?);
        }
        Ok(ids)
    }

    fn snapshot(&mut self) -> Result<Snapshot, DecodeError> {
        let meta = self.snapshot_meta()?;
        let data = self.bytes()?;
        Ok(Snapshot::new(meta, data))
    }

    /// A snapshot's fields before its data.
    fn snapshot_meta(&mut self) -> Result<SnapshotMeta, DecodeError> {
        let index = self.varint()?;
        let term = self.varint()?;
        let voters = self.ids()?;
        let learners = self.ids()?;
        Ok(SnapshotMeta::new(
            index,
            term,
            ConfState::new(&voters, &learners),
        ))
    }
}

/// Encodes a membership change as the payload of a `ConfChange` entry.
pub fn encode_conf_change(change: &ConfChange) -> Bytes {
    let mut out = Vec::with_capacity(16 + change.context().len());
    out.put_u8(CODEC_VERSION);
    out.put_u8(match change.kind() {
        ConfChangeKind::AddVoter => 0,
        ConfChangeKind::AddLearner => 1,
        ConfChangeKind::RemoveNode => 2,
    });
    put_varint(&mut out, change.node());
    put_bytes(&mut out, change.context());
    Bytes::from(out)
}

/// Decodes the payload of a `ConfChange` entry.
pub fn decode_conf_change(input: &Bytes) -> Result<ConfChange, DecodeError> {
    let mut reader = Reader { input, position: 0 };
    let version = reader.u8()?;
    if version != CODEC_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let kind = match reader.u8()? {
        0 => ConfChangeKind::AddVoter,
        1 => ConfChangeKind::AddLearner,
        2 => ConfChangeKind::RemoveNode,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    let node = reader.varint()?;
    let context = reader.bytes()?;
    if reader.position != input.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(ConfChange::new(kind, node).with_context(context))
}
