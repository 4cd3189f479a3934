//! A snapshot file's name and head, encoded and decoded (the layout is in the `snapshots`
//! module's doc).

use super::meta::SnapshotMeta;
use crate::wal::record::{read_u32, read_u64};

const MAGIC: &[u8; 8] = b"TALLYSNP";
const FORMAT_VERSION: u32 = 1;
const SUFFIX: &str = ".snap";
/// The suffix of a file not yet durable under its final name; `SnapshotStore::open` removes
/// such files.
pub(super) const TMP_SUFFIX: &str = ".snap.tmp";
/// Bytes of a file with empty membership lists and no data: the head's fixed fields and the
/// checksum.
pub(super) const FIXED_BYTES: u64 = 8 + 4 + 4 + 8 + 8 + 4 + 4 + 8 + 4;

pub(super) fn file_name(index: u64, term: u64) -> String {
    format!("{index:016x}-{term:016x}{SUFFIX}")
}

pub(super) fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (i, t) = stem.split_once('-')?;
    if i.len() != 16 || t.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(i, 16).ok()?,
        u64::from_str_radix(t, 16).ok()?,
    ))
}

fn put_ids(out: &mut Vec<u8>, ids: &[u64]) {
    // Membership lists are tiny; a list longer than u32::MAX cannot reach here.
    let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
}

/// The file's head: everything before the data.
pub(super) fn head(meta: &SnapshotMeta, data_bytes: u64) -> Vec<u8> {
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&meta.index().to_le_bytes());
    head.extend_from_slice(&meta.term().to_le_bytes());
    put_ids(&mut head, meta.voters());
    put_ids(&mut head, meta.learners());
    head.extend_from_slice(&data_bytes.to_le_bytes());
    head
}

/// Decodes the head at the start of `buf` (a prefix of the file, up to its checksum) of a file
/// whose checksum is at `crc_at`: the meta, and where the data starts.
pub(super) fn decode_head(
    buf: &[u8],
    crc_at: u64,
) -> Result<(SnapshotMeta, usize), (u64, &'static str)> {
    if buf.len() < 32 {
        return Err((0, "file shorter than a snapshot header"));
    }
    if &buf[..8] != MAGIC {
        return Err((0, "bad snapshot magic"));
    }
    if read_u32(buf, 8) != FORMAT_VERSION {
        return Err((8, "unsupported snapshot format version"));
    }
    let index = read_u64(buf, 16);
    let term = read_u64(buf, 24);
    let mut at = 32;
    let voters = read_ids(buf, &mut at)?;
    let learners = read_ids(buf, &mut at)?;
    if at + 8 > buf.len() {
        return Err((at as u64, "snapshot header runs past the end"));
    }
    let data_len = read_u64(buf, at);
    at += 8;
    if Some(crc_at) != (at as u64).checked_add(data_len) {
        return Err((
            (at - 8) as u64,
            "snapshot data length does not match the file",
        ));
    }
    Ok((SnapshotMeta::new(index, term, voters, learners), at))
}

fn read_ids(buf: &[u8], at: &mut usize) -> Result<Vec<u64>, (u64, &'static str)> {
    if *at + 4 > buf.len() {
        return Err((*at as u64, "snapshot header runs past the end"));
    }
    let n = read_u32(buf, *at) as usize;
    *at += 4;
    if n > (buf.len() - *at) / 8 {
        return Err(((*at - 4) as u64, "membership list runs past the end"));
    }
    let ids = (0..n).map(|i| read_u64(buf, *at + 8 * i)).collect();
    *at += 8 * n;
    Ok(ids)
}
