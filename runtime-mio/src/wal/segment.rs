//! Segment files: header, naming, and the reader that tells a torn tail from corruption.

use bytes::Bytes;

use super::record::{self, Decoded, Record};

pub(crate) const HEADER_BYTES: usize = 32;
const MAGIC: &[u8; 8] = b"TALLYWAL";
const FORMAT_VERSION: u32 = 1;
const HEADER_CRC_AT: usize = 28;
pub(crate) const SEGMENT_SUFFIX: &str = ".wal";
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// A segment a snapshot made obsolete, renamed so that recovery never reads it, and removed a
/// step at a time ([`super::Wal::purge_step`]).
pub(crate) const PURGED_SUFFIX: &str = ".purged";

/// The file name of segment `seq`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:016x}{SEGMENT_SUFFIX}")
}

/// The sequence number in a segment file name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SEGMENT_SUFFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The 32-byte header of segment `seq`.
pub(crate) fn header(seq: u64) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&h[..HEADER_CRC_AT]);
    h[HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The sequence number a header claims, without checking anything else.
pub(crate) fn peek_seq(buf: &[u8]) -> Option<u64> {
    buf.get(16..24).map(|b| record::read_u64(b, 0))
}

fn check_header(buf: &[u8], seq: Option<u64>) -> Result<(), (u64, &'static str)> {
    if buf.len() < HEADER_BYTES {
        return Err((0, "segment shorter than its header"));
    }
    if &buf[0..8] != MAGIC {
        return Err((0, "bad segment magic"));
    }
    if crc32fast::hash(&buf[..HEADER_CRC_AT]) != record::read_u32(buf, HEADER_CRC_AT) {
        return Err((HEADER_CRC_AT as u64, "segment header checksum mismatch"));
    }
    if record::read_u32(buf, 8) != FORMAT_VERSION {
        return Err((8, "unsupported segment format version"));
    }
    if record::read_u32(buf, 12) as usize != HEADER_BYTES {
        return Err((12, "unexpected segment header length"));
    }
    if seq.is_some_and(|s| s != record::read_u64(buf, 16)) {
        return Err((16, "segment sequence does not match its file name"));
    }
    Ok(())
}

/// A record and where it starts.
pub(crate) type Placed = (u64, Record);

/// A sequential scan of records.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Complete logical batches.
    batches: Vec<Vec<Placed>>,
    /// Records after the last complete batch.
    partial: Vec<Placed>,
    /// End of the last complete batch.
    data_end: usize,
    /// Where the scan stopped.
    stop_at: usize,
    /// Why: `None` for zeros or the end of the file.
    bad: Option<&'static str>,
}

/// Reads records from `start` until zeros, the end, or a damaged record.
pub(crate) fn scan_from(buf: &Bytes, start: usize) -> Scan {
    let mut scan = Scan {
        batches: Vec::new(),
        partial: Vec::new(),
        data_end: start,
        stop_at: start,
        bad: None,
    };
    let mut off = start;
    loop {
        match record::decode(buf, off) {
            Decoded::Record {
                record,
                batch_end,
                bytes,
                ..
            } => {
                scan.partial.push((off as u64, record));
                off += bytes;
                if batch_end {
                    scan.batches.push(std::mem::take(&mut scan.partial));
                    scan.data_end = off;
                }
            }
            Decoded::Zero => break,
            Decoded::Bad(why) => {
                scan.bad = Some(why);
                break;
            }
        }
    }
    scan.stop_at = off;
    scan
}

/// What a segment holds once its tail is understood.
#[derive(Debug)]
pub(crate) struct SegmentRead {
    batches: Vec<Vec<Placed>>,
    data_end: u64,
    dirty_end: u64,
}

impl SegmentRead {
    /// Complete logical batches, in order.
    pub(crate) fn batches(&self) -> &[Vec<Placed>] {
        &self.batches
    }
    /// Where the next write goes: the end of the last complete batch.
    pub(crate) fn data_end(&self) -> u64 {
        self.data_end
    }
    /// End of the non-zero bytes after `data_end`: `dirty_end - data_end` bytes are torn tail.
    pub(crate) fn dirty_end(&self) -> u64 {
        self.dirty_end
    }
}

/// Reads one segment. A closed segment must be perfect. In the last segment, damage after the
/// last complete batch is a torn tail, unless an intact record from a *later* write follows it
/// (a write starts only after the previous one is durable), which makes it corruption.
///
/// Errors give the byte offset and the reason.
pub(crate) fn read_segment(
    buf: &Bytes,
    seq: Option<u64>,
    last: bool,
) -> Result<SegmentRead, (u64, &'static str)> {
    check_header(buf, seq)?;
    let scan = scan_from(buf, HEADER_BYTES);
    let stop = scan.stop_at;
    if !last {
        if let Some(why) = scan.bad {
            return Err((stop as u64, why));
        }
        if !scan.partial.is_empty() {
            return Err((scan.data_end as u64, "incomplete batch in a closed segment"));
        }
        if let Some(at) = first_non_zero(buf, stop) {
            return Err((at as u64, "data after the end of a closed segment"));
        }
    } else if find_later_write(buf, stop).is_some() {
        let why = scan
            .bad
            .unwrap_or("zeroed record followed by a later durable write");
        return Err((stop as u64, why));
    }
    let dirty_end = last_non_zero_end(buf, scan.data_end).max(scan.data_end);
    Ok(SegmentRead {
        batches: scan.batches,
        data_end: scan.data_end as u64,
        dirty_end: dirty_end as u64,
    })
}

/// Looks for an intact record after `damaged` whose write started after `damaged`.
fn find_later_write(buf: &Bytes, damaged: usize) -> Option<usize> {
    let mut at = damaged + 1;
    while at < buf.len() {
        match record::decode(buf, at) {
            Decoded::Record {
                write_start, bytes, ..
            } => {
                let ws = write_start as usize;
                if ws > damaged && ws <= at && ws >= HEADER_BYTES {
                    return Some(at);
                }
                // Follow the chain: the next record of this write starts right after.
                at += bytes;
            }
            Decoded::Zero => {
                // A record's length field is never zero: skip to just before the next
                // non-zero byte.
                let next = first_non_zero(buf, at)?;
                at = (at + 1).max(next.saturating_sub(3));
            }
            Decoded::Bad(_) => at += 1,
        }
    }
    None
}

fn first_non_zero(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b != 0)
        .map(|p| p + from)
}

fn last_non_zero_end(buf: &[u8], from: usize) -> usize {
    buf.get(from..)
        .and_then(|rest| rest.iter().rposition(|&b| b != 0))
        .map_or(from, |p| p + from + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_file_name(&file_name(0x1f)), Some(0x1f));
        assert_eq!(parse_file_name("0000000000000001.tmp"), None);
        assert_eq!(parse_file_name("zz00000000000001.wal"), None);
    }

    #[test]
    fn header_checks() {
        let mut seg = header(5).to_vec();
        seg.resize(128, 0);
        let buf = Bytes::from(seg.clone());
        let read = read_segment(&buf, Some(5), false).expect("valid empty segment");
        assert!(read.batches().is_empty());
        assert_eq!(read.data_end(), HEADER_BYTES as u64);
        assert!(read_segment(&buf, Some(6), true).is_err());
        seg[9] ^= 1;
        assert!(read_segment(&Bytes::from(seg), Some(5), true).is_err());
    }
}
