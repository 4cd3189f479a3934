//! HPACK (RFC 7541) as the authority filter needs it: a decoder that mirrors the client's
//! encoder (static table, dynamic table with size updates, integers, plain and Huffman strings),
//! and an encoder that writes only "literal header field without indexing" representations, so
//! the block it writes leaves the next decoder's dynamic table untouched.
//!
//! It is tally's own, not a crate's, because the filter stands in front of h2 on bytes any
//! client sends: the crates on offer (`hpack`, unmaintained since 2015; `hpack_codec`, since
//! 2018; `loona-hpack` 0.4, the maintained fork of `hpack`) either decode a whole block without
//! a bound on its decoded size (a few bytes of indexed fields can name kilobytes each), accept
//! a dynamic table size update after a header field (RFC 7541 §4.2 forbids it), or drop the
//! never-indexed flag the re-encoding must keep (§6.2.3). `hpack/tests.rs` pins each of these.
//! h2's own HPACK is private to h2.

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// RFC 7541 section 4.1: every dynamic table entry costs its octets plus this.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 32;
/// Integers past this are refused; every HPACK quantity we accept is far smaller.
const INTEGER_MAX: u64 = u32::MAX as u64;

/// Why a header block was refused (HTTP/2 calls all of these COMPRESSION_ERROR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum HpackError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer does not fit in 32 bits.
    IntegerOverflow,
    /// Index 0, or past the static and dynamic tables.
    BadIndex {
        index: u64,
    },
    /// A dynamic table size update above the size the server allows.
    TableSizeTooLarge {
        bytes: u64,
        bytes_max: usize,
    },
    /// A dynamic table size update after a header field of the block.
    LateTableSizeUpdate,
    /// The decoded header list passes its limit (RFC 7541 sizes: name + value + 32 each).
    HeaderListTooLarge {
        bytes_max: usize,
    },
    Huffman(HuffmanError),
}

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HpackError::Truncated => f.write_str("header block ends inside a field"),
            HpackError::IntegerOverflow => f.write_str("HPACK integer overflows 32 bits"),
            HpackError::BadIndex { index } => write!(f, "HPACK index {index} out of range"),
            HpackError::TableSizeTooLarge { bytes, bytes_max } => {
                write!(f, "dynamic table size {bytes} above {bytes_max}")
            }
            HpackError::LateTableSizeUpdate => {
                f.write_str("dynamic table size update after a header field")
            }
            HpackError::HeaderListTooLarge { bytes_max } => {
                write!(f, "header list larger than {bytes_max} bytes")
            }
            HpackError::Huffman(e) => write!(f, "{e}"),
        }
    }
}

impl From<HuffmanError> for HpackError {
    fn from(e: HuffmanError) -> Self {
        HpackError::Huffman(e)
    }
}

/// One decoded header field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) value: &'a [u8],
    /// Sent as "never indexed" (RFC 7541 section 6.2.3); kept so when re-encoding.
    pub(crate) never_indexed: bool,
}

#[derive(Debug)]
struct Entry {
    name: Box<[u8]>,
    value: Box<[u8]>,
}

impl Entry {
    fn size_bytes(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD_BYTES
    }
}

/// The decoding context of one connection's client→server direction.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Newest first: HPACK index 62 is `table[0]`.
    table: VecDeque<Entry>,
    table_bytes: usize,
    /// The size the client's last update chose.
    table_bytes_max: usize,
    /// SETTINGS_HEADER_TABLE_SIZE as the server advertised it: updates may not pass it.
    settings_table_bytes_max: usize,
    name: Vec<u8>,
    value: Vec<u8>,
}

/// How a representation names its field.
enum Name {
    Indexed(u64),
    Literal,
}

impl Decoder {
    pub(crate) fn new(settings_table_bytes_max: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            table_bytes: 0,
            table_bytes_max: settings_table_bytes_max,
            settings_table_bytes_max,
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Current dynamic table occupancy, RFC 7541 sizes.
    #[cfg(test)]
    pub(crate) fn table_bytes(&self) -> usize {
        self.table_bytes
    }

    /// Entry `index` of the dynamic table, 0 the newest.
    #[cfg(test)]
    pub(crate) fn table_entry(&self, index: usize) -> Option<(&[u8], &[u8])> {
        self.table.get(index).map(|e| (&*e.name, &*e.value))
    }

    /// Decodes one complete header block, calling `emit` per field in order. On error the
    /// decoder's state is unspecified: HTTP/2 makes it a connection error.
    pub(crate) fn decode(
        &mut self,
        block: &[u8],
        header_list_bytes_max: usize,
        mut emit: impl FnMut(Field<'_>),
    ) -> Result<(), HpackError> {
        let mut pos = 0;
        let mut list_bytes = 0usize;
        let mut fields_seen = false;
        while pos < block.len() {
            let first = block[pos];
            if first & 0x80 != 0 {
                let index = decode_int(block, &mut pos, 7)?;
                let (name, value) = self.lookup(index)?;
                count(&mut list_bytes, name, value, header_list_bytes_max)?;
                emit(Field {
                    name,
                    value,
                    never_indexed: false,
                });
            } else if first & 0xe0 == 0x20 {
                if fields_seen {
                    return Err(HpackError::LateTableSizeUpdate);
                }
                let bytes = decode_int(block, &mut pos, 5)?;
                self.resize(bytes)?;
                continue;
            } else {
                let (prefix_bits, indexing, never_indexed) = match first & 0xf0 {
                    0x40..=0x70 => (6, true, false),
                    0x10 => (4, false, true),
                    _ => (4, false, false),
                };
                let name = match decode_int(block, &mut pos, prefix_bits)? {
                    0 => Name::Literal,
                    index => Name::Indexed(index),
                };
                let limit = header_list_bytes_max.saturating_sub(list_bytes);
                self.read_field(block, &mut pos, name, limit)
                    .map_err(|e| match e {
                        HpackError::Huffman(HuffmanError::TooLong { .. })
                        | HpackError::HeaderListTooLarge { .. } => HpackError::HeaderListTooLarge {
                            bytes_max: header_list_bytes_max,
                        },
                        e => e,
                    })?;
                count(
                    &mut list_bytes,
                    &self.name,
                    &self.value,
                    header_list_bytes_max,
                )?;
                emit(Field {
                    name: &self.name,
                    value: &self.value,
                    never_indexed,
                });
                if indexing {
                    self.insert();
                }
            }
            fields_seen = true;
        }
        Ok(())
    }

    /// Reads a literal field's name (unless indexed) and value into `self.name`/`self.value`.
    fn read_field(
        &mut self,
        block: &[u8],
        pos: &mut usize,
        name: Name,
        bytes_max: usize,
    ) -> Result<(), HpackError> {
        let mut name_buf = std::mem::take(&mut self.name);
        let mut value_buf = std::mem::take(&mut self.value);
        name_buf.clear();
        value_buf.clear();
        let read = (|| {
            match name {
                Name::Indexed(index) => name_buf.extend_from_slice(self.lookup(index)?.0),
                Name::Literal => decode_string(block, pos, &mut name_buf, bytes_max)?,
            }
            let left = bytes_max.saturating_sub(name_buf.len());
            decode_string(block, pos, &mut value_buf, left)
        })();
        self.name = name_buf;
        self.value = value_buf;
        read
    }

    fn lookup(&self, index: u64) -> Result<(&[u8], &[u8]), HpackError> {
        let bad = HpackError::BadIndex { index };
        let at = usize::try_from(index).map_err(|_| bad)?;
        if at == 0 {
            return Err(bad);
        }
        if let Some(&(name, value)) = STATIC_TABLE.get(at - 1) {
            return Ok((name, value));
        }
        let entry = self.table.get(at - 1 - STATIC_TABLE.len()).ok_or(bad)?;
        Ok((&entry.name, &entry.value))
    }

    fn resize(&mut self, bytes: u64) -> Result<(), HpackError> {
        let bytes_max = self.settings_table_bytes_max;
        let too_large = HpackError::TableSizeTooLarge { bytes, bytes_max };
        let bytes = usize::try_from(bytes).map_err(|_| too_large)?;
        if bytes > bytes_max {
            return Err(too_large);
        }
        self.table_bytes_max = bytes;
        self.evict_to(bytes);
        Ok(())
    }

    /// Adds `self.name`/`self.value` as the newest entry (RFC 7541 section 4.4).
    fn insert(&mut self) {
        let size = self.name.len() + self.value.len() + ENTRY_OVERHEAD_BYTES;
        if size > self.table_bytes_max {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.table_bytes_max - size);
        self.table.push_front(Entry {
            name: self.name.as_slice().into(),
            value: self.value.as_slice().into(),
        });
        self.table_bytes += size;
    }

    fn evict_to(&mut self, bytes: usize) {
        while self.table_bytes > bytes {
            let Some(entry) = self.table.pop_back() else {
                break;
            };
            self.table_bytes -= entry.size_bytes();
        }
    }
}

fn count(
    list_bytes: &mut usize,
    name: &[u8],
    value: &[u8],
    bytes_max: usize,
) -> Result<(), HpackError> {
    *list_bytes = list_bytes
        .saturating_add(name.len() + value.len())
        .saturating_add(ENTRY_OVERHEAD_BYTES);
    if *list_bytes > bytes_max {
        return Err(HpackError::HeaderListTooLarge { bytes_max });
    }
    Ok(())
}

/// RFC 7541 section 5.1, from `block[*pos]` with an N-bit prefix.
fn decode_int(block: &[u8], pos: &mut usize, prefix_bits: u32) -> Result<u64, HpackError> {
    let mask = (1u8 << prefix_bits) - 1;
    let first = *block.get(*pos).ok_or(HpackError::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(u64::from(first));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let byte = *block.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += u64::from(byte & 0x7f) << shift;
        if value > INTEGER_MAX {
            return Err(HpackError::IntegerOverflow);
        }
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
        if shift > 28 {
            // Only zero groups could follow without overflow; refuse such padding too.
            return Err(HpackError::IntegerOverflow);
        }
    }
}

/// RFC 7541 section 5.2: appends the string at `block[*pos]` to `out`.
fn decode_string(
    block: &[u8],
    pos: &mut usize,
    out: &mut Vec<u8>,
    bytes_max: usize,
) -> Result<(), HpackError> {
    let huffman = *block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = decode_int(block, pos, 7)?;
    let len = usize::try_from(len).map_err(|_| HpackError::Truncated)?;
    let end = pos.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = block.get(*pos..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huffman {
        huffman::decode(raw, out, bytes_max)?;
    } else {
        if raw.len() > bytes_max {
            return Err(HpackError::HeaderListTooLarge { bytes_max });
        }
        out.extend_from_slice(raw);
    }
    Ok(())
}

/// Appends `field` as a literal without indexing (never indexed if it came so), naming it by
/// static table index when the name is there; strings go out without Huffman coding.
pub(crate) fn encode_literal(out: &mut Vec<u8>, field: Field<'_>) {
    let pattern = if field.never_indexed { 0x10 } else { 0x00 };
    match STATIC_TABLE
        .iter()
        .position(|&(name, _)| name == field.name)
    {
        Some(at) => encode_int(out, at as u64 + 1, 4, pattern),
        None => {
            encode_int(out, 0, 4, pattern);
            encode_string(out, field.name);
        }
    }
    encode_string(out, field.value);
}

/// The most bytes [`encode_literal`] writes beyond the name and value: two length integers of
/// up to 6 bytes each plus the representation's first byte.
#[cfg(test)]
pub(crate) const LITERAL_OVERHEAD_BYTES_MAX: usize = 13;

fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    encode_int(out, s.len() as u64, 7, 0x00);
    out.extend_from_slice(s);
}

fn encode_int(out: &mut Vec<u8>, value: u64, prefix_bits: u32, pattern: u8) {
    let mask = (1u64 << prefix_bits) - 1;
    if value < mask {
        out.push(pattern | value as u8);
        return;
    }
    out.push(pattern | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests;
