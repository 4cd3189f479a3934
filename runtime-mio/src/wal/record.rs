//! Record encoding. See the module docs of `wal` for the layout.

use bytes::Bytes;

use super::types::{Batch, Entry, EntryKind, HardState, SnapshotMarker};

/// Length and checksum in front of every record body.
pub(crate) const PREFIX_BYTES: usize = 8;
/// Write offset, kind and flags at the start of every body.
const BODY_FIXED_BYTES: usize = 6;
const RECORD_FIXED_BYTES: usize = PREFIX_BYTES + BODY_FIXED_BYTES;

/// An entry without its kind: the first format, still read, no longer written.
const KIND_ENTRY_WITHOUT_KIND: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;
const KIND_TRUNCATE: u8 = 4;
/// An entry with its [`EntryKind`] byte.
const KIND_ENTRY: u8 = 5;
const FLAG_BATCH_END: u8 = 1;

const ENTRY_FIXED_BYTES: usize = RECORD_FIXED_BYTES + 17;
pub(crate) const HARD_STATE_BYTES: usize = RECORD_FIXED_BYTES + 24;
const SNAPSHOT_BYTES: usize = RECORD_FIXED_BYTES + 16;
pub(crate) const TRUNCATE_BYTES: usize = RECORD_FIXED_BYTES + 8;

/// Room for the state records that open every new segment.
pub(crate) const SEGMENT_HEAD_BYTES: u64 = (HARD_STATE_BYTES + SNAPSHOT_BYTES) as u64;
/// `record_bytes_max` must at least hold the fixed-size records and a small entry.
pub(crate) const SMALLEST_RECORD_MAX: u64 = 64;

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    Entry(Entry),
    HardState(HardState),
    Snapshot(SnapshotMarker),
    /// Drop the entry at this index and everything after it.
    Truncate(u64),
}

/// Encoded size of an entry record.
pub(crate) fn entry_bytes(entry: &Entry) -> u64 {
    (ENTRY_FIXED_BYTES + entry.data().len()) as u64
}

/// Upper bound of a batch's encoded size (it counts a truncation record whenever the batch
/// has entries, because only the writer knows whether one is needed).
pub(crate) fn batch_bytes(batch: &Batch) -> u64 {
    let mut bytes = 0u64;
    if batch.snapshot().is_some() {
        bytes += SNAPSHOT_BYTES as u64;
    }
    if !batch.entries().is_empty() {
        bytes += TRUNCATE_BYTES as u64;
    }
    bytes += batch.entries().iter().map(entry_bytes).sum::<u64>();
    if batch.hard_state().is_some() {
        bytes += HARD_STATE_BYTES as u64;
    }
    bytes
}

/// Appends records to one write buffer; `write_start` is the segment offset of that write.
pub(crate) struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    write_start: u32,
}

impl<'a> Encoder<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, write_start: u32) -> Self {
        Self { out, write_start }
    }

    /// Encodes `records` as one atomic logical batch. Empty input writes nothing.
    pub(crate) fn batch<'r>(&mut self, records: impl ExactSizeIterator<Item = RecordRef<'r>>) {
        let count = records.len();
        for (i, record) in records.enumerate() {
            self.record(record, i + 1 == count);
        }
    }

    fn record(&mut self, record: RecordRef<'_>, last: bool) {
        let start = self.out.len();
        self.out.extend_from_slice(&[0u8; PREFIX_BYTES]);
        self.out.extend_from_slice(&self.write_start.to_le_bytes());
        let kind = match record {
            RecordRef::Entry(_) => KIND_ENTRY,
            RecordRef::HardState(_) => KIND_HARD_STATE,
            RecordRef::Snapshot(_) => KIND_SNAPSHOT,
            RecordRef::Truncate(_) => KIND_TRUNCATE,
        };
        self.out.push(kind);
        self.out.push(if last { FLAG_BATCH_END } else { 0 });
        match record {
            RecordRef::Entry(e) => {
                self.put_u64(e.index());
                self.put_u64(e.term());
                // `Wal::append` refuses an entry without its kind.
                let kind = e.kind().expect("appended entries have their kind");
                self.out.push(kind.to_u8());
                self.out.extend_from_slice(e.data());
            }
            RecordRef::HardState(hs) => {
                self.put_u64(hs.term());
                self.put_u64(hs.vote());
                self.put_u64(hs.commit());
            }
            RecordRef::Snapshot(m) => {
                self.put_u64(m.index());
                self.put_u64(m.term());
            }
            RecordRef::Truncate(index) => self.put_u64(index),
        }
        // Entry sizes are checked against record_bytes_max (< 4 GiB) before encoding.
        let body_len = u32::try_from(self.out.len() - start - PREFIX_BYTES)
            .expect("record size is bounded by record_bytes_max");
        let len_bytes = body_len.to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len_bytes);
        hasher.update(&self.out[start + PREFIX_BYTES..]);
        let crc = hasher.finalize();
        self.out[start..start + 4].copy_from_slice(&len_bytes);
        self.out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A record to encode, borrowing its entry.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RecordRef<'a> {
    Entry(&'a Entry),
    HardState(HardState),
    Snapshot(SnapshotMarker),
    Truncate(u64),
}

/// The outcome of decoding at one offset.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A valid record of `bytes` bytes.
    Record {
        record: Record,
        write_start: u32,
        batch_end: bool,
        bytes: usize,
    },
    /// A zero header (or zero bytes up to the end): no record was ever written here.
    Zero,
    /// Something that is neither zeros nor a valid record.
    Bad(&'static str),
}

/// Decodes the record at `off`. Total: never panics, whatever `buf` holds.
pub(crate) fn decode(buf: &Bytes, off: usize) -> Decoded {
    let Some(rest) = buf.get(off..) else {
        return Decoded::Zero;
    };
    if rest.len() < PREFIX_BYTES {
        return if rest.iter().all(|&b| b == 0) {
            Decoded::Zero
        } else {
            Decoded::Bad("truncated record header")
        };
    }
    let len = read_u32(rest, 0);
    let crc = read_u32(rest, 4);
    if len == 0 && crc == 0 {
        return Decoded::Zero;
    }
    let body_len = len as usize;
    if body_len < BODY_FIXED_BYTES {
        return Decoded::Bad("record length too small");
    }
    if body_len > rest.len() - PREFIX_BYTES {
        return Decoded::Bad("record runs past the end of the segment");
    }
    let body = &rest[PREFIX_BYTES..PREFIX_BYTES + body_len];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rest[..4]);
    hasher.update(body);
    if hasher.finalize() != crc {
        return Decoded::Bad("record checksum mismatch");
    }
    let write_start = read_u32(body, 0);
    let kind = body[4];
    let flags = body[5];
    if flags & !FLAG_BATCH_END != 0 {
        return Decoded::Bad("unknown record flags");
    }
    let payload = &body[BODY_FIXED_BYTES..];
    let record = match (kind, payload.len()) {
        (KIND_ENTRY, n) if n >= 17 => {
            let Some(entry_kind) = EntryKind::from_u8(payload[16]) else {
                return Decoded::Bad("unknown entry kind");
            };
            // A copy, not a slice: a slice would keep the whole preallocated segment buffer
            // alive for as long as any recovered entry lives.
            let data = Bytes::copy_from_slice(&payload[17..]);
            Record::Entry(Entry::new(
                read_u64(payload, 0),
                read_u64(payload, 8),
                entry_kind,
                data,
            ))
        }
        (KIND_ENTRY_WITHOUT_KIND, n) if n >= 16 => {
            let data = Bytes::copy_from_slice(&payload[16..]);
            Record::Entry(Entry::without_kind(
                read_u64(payload, 0),
                read_u64(payload, 8),
                data,
            ))
        }
        (KIND_HARD_STATE, 24) => Record::HardState(HardState::new(
            read_u64(payload, 0),
            read_u64(payload, 8),
            read_u64(payload, 16),
        )),
        (KIND_SNAPSHOT, 16) => Record::Snapshot(SnapshotMarker::new(
            read_u64(payload, 0),
            read_u64(payload, 8),
        )),
        (KIND_TRUNCATE, 8) => Record::Truncate(read_u64(payload, 0)),
        (
            KIND_ENTRY | KIND_ENTRY_WITHOUT_KIND | KIND_HARD_STATE | KIND_SNAPSHOT | KIND_TRUNCATE,
            _,
        ) => {
            return Decoded::Bad("record payload has the wrong length");
        }
        _ => return Decoded::Bad("unknown record kind"),
    };
    Decoded::Record {
        record,
        write_start,
        batch_end: flags & FLAG_BATCH_END != 0,
        bytes: PREFIX_BYTES + body_len,
    }
}

pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

pub(crate) fn read_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_one(records: &[RecordRef<'_>], write_start: u32) -> Bytes {
        let mut out = Vec::new();
        Encoder::new(&mut out, write_start).batch(records.iter().copied());
        Bytes::from(out)
    }

    #[test]
    fn round_trip_every_kind() {
        let e = Entry::new(7, 3, EntryKind::ConfChange, Bytes::from_static(b"hello"));
        let hs = HardState::new(3, 2, 6);
        let m = SnapshotMarker::new(5, 2);
        let buf = encode_one(
            &[
                RecordRef::Snapshot(m),
                RecordRef::Truncate(7),
                RecordRef::Entry(&e),
                RecordRef::HardState(hs),
            ],
            40,
        );
        let want = [
            Record::Snapshot(m),
            Record::Truncate(7),
            Record::Entry(e.clone()),
            Record::HardState(hs),
        ];
        let mut off = 0;
        for (i, w) in want.iter().enumerate() {
            match decode(&buf, off) {
                Decoded::Record {
                    record,
                    write_start,
                    batch_end,
                    bytes,
                } => {
                    assert_eq!(&record, w);
                    assert_eq!(write_start, 40);
                    assert_eq!(batch_end, i == 3);
                    off += bytes;
                }
                other => panic!("record {i}: {other:?}"),
            }
        }
        assert!(matches!(decode(&buf, off), Decoded::Zero));
        let batch = Batch::new()
            .with_snapshot(m)
            .with_entries(vec![e])
            .with_hard_state(hs);
        assert_eq!(batch.encoded_bytes(), buf.len() as u64);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let e = Entry::new(1, 1, EntryKind::Normal, Bytes::from_static(b"abc"));
        let buf = encode_one(&[RecordRef::Entry(&e)], 32);
        for bit in 0..buf.len() * 8 {
            let mut v = buf.to_vec();
            v[bit / 8] ^= 1 << (bit % 8);
            let decoded = decode(&Bytes::from(v), 0);
            assert!(
                !matches!(decoded, Decoded::Record { .. }),
                "bit {bit}: {decoded:?}"
            );
        }
    }

    /// A record as the first format wrote it, byte by byte: length, CRC, write offset, kind 1,
    /// flags, index, term, data, with no entry kind.
    fn first_format_entry(index: u64, term: u64, data: &[u8]) -> Bytes {
        let mut body = Vec::new();
        body.extend_from_slice(&32u32.to_le_bytes());
        body.push(KIND_ENTRY_WITHOUT_KIND);
        body.push(FLAG_BATCH_END);
        body.extend_from_slice(&index.to_le_bytes());
        body.extend_from_slice(&term.to_le_bytes());
        body.extend_from_slice(data);
        let len = (body.len() as u32).to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len);
        hasher.update(&body);
        let mut out = len.to_vec();
        out.extend_from_slice(&hasher.finalize().to_le_bytes());
        out.extend_from_slice(&body);
        Bytes::from(out)
    }

    #[test]
    fn first_format_entries_are_read_without_a_kind() {
        let buf = first_format_entry(4, 2, b"legacy");
        match decode(&buf, 0) {
            Decoded::Record { record, bytes, .. } => {
                assert_eq!(bytes, buf.len());
                let Record::Entry(entry) = record else {
                    panic!("{record:?}");
                };
                assert_eq!((entry.index(), entry.term()), (4, 2));
                assert_eq!(entry.kind(), None);
                assert_eq!(&entry.data()[..], b"legacy");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_entry_kind_is_damage() {
        let e = Entry::new(1, 1, EntryKind::Normal, Bytes::from_static(b"abc"));
        let mut v = encode_one(&[RecordRef::Entry(&e)], 32).to_vec();
        // The entry kind byte follows the body's fixed part, the index and the term; the CRC
        // is recomputed so that only the kind is wrong.
        v[PREFIX_BYTES + BODY_FIXED_BYTES + 16] = 9;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&v[..4]);
        hasher.update(&v[PREFIX_BYTES..]);
        let crc = hasher.finalize().to_le_bytes();
        v[4..8].copy_from_slice(&crc);
        assert!(matches!(
            decode(&Bytes::from(v), 0),
            Decoded::Bad("unknown entry kind")
        ));
    }
}
