//! What a Raft entry carries for `tallyd`, and the snapshot envelope.
//!
//! Normal entries start with a tag byte: [`TAG_KV`] then an encoded kvstore `InternalRequest`,
//! or [`TAG_ATTRIBUTES`] then a `Member` whose name and client URLs a member publishes after it
//! starts (as etcd does). An empty entry is the leader's no-op. Membership changes are core
//! `ConfChange` entries whose context is the new `Member`.
//!
//! The WAL stores (index, term, data) without the core's entry kind, so the kind is recovered
//! from the data: a `ConfChange` payload starts with the core codec version byte (1), which no
//! normal entry does (tags are 0x10 and up).

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use tally_core::EntryKind;
use tally_kvstore::proto::{InternalRequest, Member};

pub const TAG_KV: u8 = 0x10;
pub const TAG_ATTRIBUTES: u8 = 0x11;

/// The core codec version byte that starts every ConfChange payload.
const CONF_CHANGE_FIRST_BYTE: u8 = tally_core::codec::CODEC_VERSION;

pub fn encode_kv(request: &InternalRequest) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + request.encoded_len());
    out.put_u8(TAG_KV);
    request.encode(&mut out).expect("BytesMut grows");
    out.freeze()
}

pub fn encode_attributes(member: &Member) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + member.encoded_len());
    out.put_u8(TAG_ATTRIBUTES);
    member.encode(&mut out).expect("BytesMut grows");
    out.freeze()
}

/// A normal entry's payload, decoded.
#[derive(Debug)]
pub enum Payload {
    Noop,
    /// The kvstore request bytes (without the tag).
    Kv(Bytes),
    Attributes(Member),
    /// Bytes this build cannot read; applied as a no-op on every member alike.
    Unknown,
}

pub fn decode(data: &Bytes) -> Payload {
    match data.first() {
        None => Payload::Noop,
        Some(&TAG_KV) => Payload::Kv(data.slice(1..)),
        Some(&TAG_ATTRIBUTES) => {
            Member::decode(&data[1..]).map_or(Payload::Unknown, Payload::Attributes)
        }
        Some(_) => Payload::Unknown,
    }
}

/// The core entry kind of a payload read back from the first WAL format, which did not
/// record it: a membership change starts with the core codec's byte, which no kvstore
/// request starts with.
pub fn kind_of(data: &[u8]) -> EntryKind {
    if data.first() == Some(&CONF_CHANGE_FIRST_BYTE) {
        EntryKind::ConfChange
    } else {
        EntryKind::Normal
    }
}

/// Snapshot bytes: magic, member table length (u32) and bytes, kvstore snapshot length (u64)
/// and bytes. Anything after that (the zero padding of an exported file) is ignored.
const SNAPSHOT_MAGIC: &[u8; 8] = b"TALLYSN1";

pub fn encode_snapshot(members: &Bytes, kv: &[u8]) -> Bytes {
    let mut out = snapshot_prefix(members, kv.len() as u64);
    out.reserve_exact(kv.len());
    out.extend_from_slice(kv);
    Bytes::from(out)
}

/// Bytes in front of the kvstore snapshot: magic, member table, kvstore snapshot length.
pub fn snapshot_prefix_bytes(members: &[u8]) -> usize {
    SNAPSHOT_MAGIC.len() + 4 + members.len() + 8
}

/// What goes in front of a kvstore snapshot of `kv_bytes`; a snapshot streamed to its file
/// writes it last, once the length is known.
pub fn snapshot_prefix(members: &[u8], kv_bytes: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(snapshot_prefix_bytes(members));
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    out.extend_from_slice(members);
    out.extend_from_slice(&kv_bytes.to_le_bytes());
    out
}

/// Reads the prefix of snapshot bytes from a stream: the member table and the length of the
/// kvstore snapshot that follows it. `None` if it is not a tally snapshot.
pub fn read_snapshot_prefix(
    input: &mut impl std::io::Read,
) -> std::io::Result<Option<(Bytes, u64)>> {
    use std::io::Read as _;
    let mut head = [0u8; 12];
    input.read_exact(&mut head)?;
    if &head[..8] != SNAPSHOT_MAGIC {
        return Ok(None);
    }
    let members_len = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    let mut members = Vec::new();
    let read = input
        .by_ref()
        .take(u64::from(members_len))
        .read_to_end(&mut members)?;
    if read != members_len as usize {
        return Ok(None);
    }
    let mut kv_len = [0u8; 8];
    input.read_exact(&mut kv_len)?;
    Ok(Some((Bytes::from(members), u64::from_le_bytes(kv_len))))
}

/// Splits snapshot bytes into (member table, kvstore snapshot): [`read_snapshot_prefix`] over
/// the bytes in memory, the kvstore snapshot sliced out without a copy.
pub fn decode_snapshot(data: &Bytes) -> Option<(Bytes, Bytes)> {
    let mut rest = &data[..];
    let (members, kv_len) = read_snapshot_prefix(&mut rest).ok()??;
    let kv_start = data.len() - rest.len();
    let kv_end = kv_start
        .checked_add(usize::try_from(kv_len).ok()?)
        .filter(|&end| end <= data.len())?;
    Some((members, data.slice(kv_start..kv_end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_prefix_reads_as_the_split_does() {
        let members = Bytes::from_static(b"member table");
        let data = encode_snapshot(&members, b"kv bytes");
        let mut input = &data[..];
        let (table, kv_len) = read_snapshot_prefix(&mut input).unwrap().unwrap();
        let (split_table, kv) = decode_snapshot(&data).unwrap();
        assert_eq!((table, kv_len), (split_table, kv.len() as u64));
        assert_eq!(input, &kv[..], "the stream is left at the kvstore snapshot");
        assert_eq!(
            read_snapshot_prefix(&mut &b"not a tally snapshot"[..]).unwrap(),
            None
        );
        assert!(read_snapshot_prefix(&mut &data[..10]).is_err(), "truncated");
    }

    #[test]
    fn kinds_are_recovered_from_payloads() {
        let change = tally_core::ConfChange::new(tally_core::ConfChangeKind::AddVoter, 5);
        assert_eq!(
            kind_of(&tally_core::codec::encode_conf_change(&change)),
            EntryKind::ConfChange
        );
        assert_eq!(
            kind_of(&encode_kv(&InternalRequest::default())),
            EntryKind::Normal
        );
        assert_eq!(kind_of(&[]), EntryKind::Normal);
    }

    #[test]
    fn snapshot_envelope_round_trips_and_rejects_garbage() {
        let mut padded = encode_snapshot(&Bytes::from_static(b"members"), b"kv").to_vec();
        padded.extend_from_slice(&[0; 100]);
        let data = Bytes::from(padded);
        let (members, kv) = decode_snapshot(&data).expect("valid");
        assert_eq!((&members[..], &kv[..]), (&b"members"[..], &b"kv"[..]));
        assert!(decode_snapshot(&Bytes::from_static(b"TALLYSN1\xff\xff\xff\xff")).is_none());
        assert!(decode_snapshot(&Bytes::from_static(b"nope")).is_none());
    }
}
