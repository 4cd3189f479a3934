//! A filter on the client→server bytes of an HTTP/2 connection, in front of h2: it rewrites a
//! scheme-qualified `:authority` (`http://127.0.0.1:2379`, which grpc-go's passthrough resolver
//! sends for endpoints given with a scheme, and which h2 refuses as malformed) to the bare
//! authority (`127.0.0.1:2379`), as etcd's grpc-go server accepts it.
//!
//! Sans-IO: [`AuthorityFilter::process`] takes the bytes of one read. The connection preface
//! and every frame but HEADERS/CONTINUATION stay where they are in the read buffer (moved at
//! most once, and only after a header block), so DATA is not buffered here. Header blocks are
//! collected, HPACK-decoded with a decoder that mirrors the client's encoder, and re-encoded as
//! literals without indexing (so h2's decoder never needs a dynamic table) into HEADERS and
//! CONTINUATION frames of at most 16384 bytes, the smallest SETTINGS_MAX_FRAME_SIZE a peer may
//! advertise. Dynamic table size updates stay with the mirrored decoder; priority fields and
//! padding are dropped (h2 ignores priority). Output that no longer fits in the read buffer
//! waits in a pending queue for the next reads. [`AuthorityFilter::read`] reads the socket
//! again only once that queue is empty, and a read whose blocks fill the queue past
//! `pending_bytes_max` has its rest held back for later reads, so the queue stays within that
//! limit plus one block plus one read, and the held-back input within one read.

use std::io;

use super::hpack::{self, Decoder, Field, HpackError};
use super::http1::H2_PREFACE;

const FRAME_HEAD_BYTES: usize = 9;
const KIND_HEADERS: u8 = 0x1;
const KIND_SETTINGS: u8 = 0x4;
const KIND_PING: u8 = 0x6;
const KIND_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
/// SETTINGS and PING acknowledgements.
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// Stream dependency (4) and weight (1) of a HEADERS frame with PRIORITY.
const PRIORITY_BYTES: usize = 5;
const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// Limits of one connection's filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FilterLimits {
    /// Encoded header block bytes (HEADERS and CONTINUATION payloads) collected before decoding.
    header_block_bytes_max: usize,
    /// CONTINUATION frames in one header block.
    continuation_frames_max: usize,
    /// Decoded header list, RFC 7541 sizes (name + value + 32 per field). The re-encoded block
    /// is smaller than this, so it takes at most four 16 KiB frames: h2 refuses blocks of more
    /// than five CONTINUATION frames without END_HEADERS.
    header_list_bytes_max: usize,
    /// SETTINGS_HEADER_TABLE_SIZE the server advertises: h2 keeps the 4096 default.
    dynamic_table_bytes_max: usize,
    /// Payload of every frame the filter writes.
    output_frame_bytes_max: usize,
    /// Pending output past which the filter stops taking input and holds the rest of the read
    /// back: a few bytes of indexed fields can decode into a large block.
    pending_bytes_max: usize,
    /// Capacity the buffers keep between blocks; larger ones are freed.
    retained_bytes_max: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        FilterLimits {
            header_block_bytes_max: 64 << 10,
            continuation_frames_max: 16,
            // Four times h2's header list limit (16 KiB by default): lists h2 refuses per
            // stream still reach it; only larger ones close the connection here.
            header_list_bytes_max: 64 << 10,
            dynamic_table_bytes_max: 4096,
            output_frame_bytes_max: 16 << 10,
            pending_bytes_max: 64 << 10,
            retained_bytes_max: 32 << 10,
        }
    }
}

/// Why the filter gave up on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum FilterError {
    Hpack(HpackError),
    HeaderBlockTooLarge {
        bytes_max: usize,
    },
    TooManyContinuations {
        frames_max: usize,
    },
    /// A CONTINUATION frame with no header block open on its stream.
    UnexpectedContinuation {
        stream_id: u32,
    },
    /// A frame other than CONTINUATION while a header block is open.
    ExpectedContinuation {
        kind: u8,
    },
    /// A padded HEADERS frame whose padding and priority fields pass its length.
    BadPadding,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Hpack(e) => write!(f, "malformed header block: {e}"),
            FilterError::HeaderBlockTooLarge { bytes_max } => {
                write!(f, "header block larger than {bytes_max} bytes")
            }
            FilterError::TooManyContinuations { frames_max } => {
                write!(
                    f,
                    "more than {frames_max} CONTINUATION frames in a header block"
                )
            }
            FilterError::UnexpectedContinuation { stream_id } => {
                write!(
                    f,
                    "CONTINUATION without an open header block on stream {stream_id}"
                )
            }
            FilterError::ExpectedContinuation { kind } => {
                write!(f, "frame type {kind} inside an open header block")
            }
            FilterError::BadPadding => f.write_str("HEADERS padding longer than the frame"),
        }
    }
}

impl std::error::Error for FilterError {}

impl From<HpackError> for FilterError {
    fn from(e: HpackError) -> Self {
        FilterError::Hpack(e)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Client preface bytes still to pass.
    Preface { left: usize },
    /// Frame header bytes collected in `head`.
    Head { have: usize },
    /// Payload bytes of a passed-through frame still to pass.
    Pass { left: usize },
    /// Payload bytes of a HEADERS or CONTINUATION frame still to collect into `block`.
    Collect { left: usize, kind: u8, flags: u8 },
}

/// A header block whose END_HEADERS has not come yet.
#[derive(Clone, Copy, Debug)]
struct OpenBlock {
    stream_id: u32,
    end_stream: bool,
    continuations: usize,
}

/// Where processed bytes go: back into the read buffer while they fit behind the read
/// position, else (and from then on, to keep the order) into the pending queue.
struct Out<'a> {
    data: &'a mut [u8],
    kept: usize,
    spill: bool,
}

impl Out<'_> {
    /// Passes `data[from..from + len]` on.
    fn keep(&mut self, pending: &mut Vec<u8>, from: usize, len: usize) {
        if self.spill {
            pending.extend_from_slice(&self.data[from..from + len]);
        } else {
            self.data.copy_within(from..from + len, self.kept);
            self.kept += len;
        }
    }

    /// Passes `bytes` on, with `data[..consumed]` read so far.
    fn put(&mut self, pending: &mut Vec<u8>, bytes: &[u8], consumed: usize) {
        if !self.spill && self.kept + bytes.len() <= consumed {
            self.data[self.kept..self.kept + bytes.len()].copy_from_slice(bytes);
            self.kept += bytes.len();
        } else {
            self.spill = true;
            pending.extend_from_slice(bytes);
        }
    }
}

/// The filter of one connection; see the module docs.
#[derive(Debug)]
pub(crate) struct AuthorityFilter {
    limits: FilterLimits,
    stage: Stage,
    head: [u8; FRAME_HEAD_BYTES],
    open: Option<OpenBlock>,
    /// Fragments of the open header block.
    block: Vec<u8>,
    /// The re-encoded block.
    encoded: Vec<u8>,
    /// Output waiting for the next reads, from `pending_at`.
    pending: Vec<u8>,
    pending_at: usize,
    /// Input held back from a read, from `held_at`: it is read again before the socket.
    held: Vec<u8>,
    held_at: usize,
    decoder: Decoder,
    failed: Option<FilterError>,
    /// The client's SETTINGS and PING frames (acknowledgements aside) seen so far.
    settings_frames: u64,
    ping_frames: u64,
}

impl AuthorityFilter {
    pub(crate) fn new(limits: FilterLimits) -> AuthorityFilter {
        AuthorityFilter {
            limits,
            stage: Stage::Preface {
                left: H2_PREFACE.len(),
            },
            head: [0; FRAME_HEAD_BYTES],
            open: None,
            block: Vec::new(),
            encoded: Vec::new(),
            pending: Vec::new(),
            pending_at: 0,
            held: Vec::new(),
            held_at: 0,
            decoder: Decoder::new(limits.dynamic_table_bytes_max),
            failed: None,
            settings_frames: 0,
            ping_frames: 0,
        }
    }

    /// (SETTINGS, PING) frames from the client so far, acknowledgements aside, counted as
    /// their headers pass: the first SETTINGS completes the client's side of the handshake,
    /// and PINGs are policed against etcd's `--grpc-keepalive-min-time`.
    pub(crate) fn control_frames(&self) -> (u64, u64) {
        (self.settings_frames, self.ping_frames)
    }

    /// One read for h2: fills `buf` with filtered bytes from pending output, held-back input,
    /// or `read` (the socket). `Ok(0)` only when `read` gives it (the end of the stream); a
    /// filter error comes back as `InvalidData`.
    pub(crate) fn read(
        &mut self,
        buf: &mut [u8],
        mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.has_pending() {
                return Ok(self.take_pending(buf));
            }
            let from_held = self.held_at < self.held.len();
            let n = if from_held {
                let n = buf.len().min(self.held.len() - self.held_at);
                buf[..n].copy_from_slice(&self.held[self.held_at..self.held_at + n]);
                self.held_at += n;
                n
            } else {
                match read(buf)? {
                    0 => return Ok(0),
                    n => n,
                }
            };
            let (kept, consumed) = self
                .process(&mut buf[..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if consumed < n {
                // `process` wrote only below `kept <= consumed`: the tail is as read.
                if from_held {
                    self.held_at -= n - consumed;
                } else {
                    self.held.clear();
                    self.held.extend_from_slice(&buf[consumed..n]);
                    self.held_at = 0;
                }
            } else if self.held_at == self.held.len() && !self.held.is_empty() {
                self.held.clear();
                self.held_at = 0;
                shrink(&mut self.held, self.limits.retained_bytes_max);
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }

    fn has_pending(&self) -> bool {
        self.pending_at < self.pending.len()
    }

    fn take_pending(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.pending.len() - self.pending_at);
        buf[..n].copy_from_slice(&self.pending[self.pending_at..self.pending_at + n]);
        self.pending_at += n;
        if self.pending_at == self.pending.len() {
            self.pending.clear();
            self.pending_at = 0;
            shrink(&mut self.pending, self.limits.retained_bytes_max);
        }
        n
    }

    /// Filters `data` in place: returns `(kept, consumed)`. `data[..kept]` goes to h2 first,
    /// then the pending output; `data[consumed..]` was not looked at (pending output passed
    /// `pending_bytes_max`). Once an error is returned, every later call returns it too.
    fn process(&mut self, data: &mut [u8]) -> Result<(usize, usize), FilterError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let spill = self.has_pending();
        let mut out = Out {
            data,
            kept: 0,
            spill,
        };
        let mut at = 0;
        while at < out.data.len() && self.pending.len() <= self.limits.pending_bytes_max {
            match self.step(&mut out, at) {
                Ok(next) => at = next,
                Err(e) => {
                    self.failed = Some(e);
                    self.block = Vec::new();
                    self.encoded = Vec::new();
                    self.pending = Vec::new();
                    self.pending_at = 0;
                    self.held = Vec::new();
                    self.held_at = 0;
                    return Err(e);
                }
            }
        }
        Ok((out.kept, at))
    }

    /// Consumes bytes from `out.data[at..]`; returns the new read position.
    fn step(&mut self, out: &mut Out<'_>, at: usize) -> Result<usize, FilterError> {
        let avail = out.data.len() - at;
        match self.stage {
            Stage::Preface { left } | Stage::Pass { left } => {
                let n = left.min(avail);
                out.keep(&mut self.pending, at, n);
                self.stage = match self.stage {
                    _ if n == left => Stage::Head { have: 0 },
                    Stage::Preface { .. } => Stage::Preface { left: left - n },
                    _ => Stage::Pass { left: left - n },
                };
                Ok(at + n)
            }
            Stage::Head { have } => {
                let n = (FRAME_HEAD_BYTES - have).min(avail);
                self.head[have..have + n].copy_from_slice(&out.data[at..at + n]);
                if have + n < FRAME_HEAD_BYTES {
                    self.stage = Stage::Head { have: have + n };
                } else {
                    self.on_head(out, at + n)?;
                }
                Ok(at + n)
            }
            Stage::Collect { left, kind, flags } => {
                let n = left.min(avail);
                self.block.extend_from_slice(&out.data[at..at + n]);
                if n == left {
                    self.end_frame(out, at + n, kind, flags)?;
                } else {
                    self.stage = Stage::Collect {
                        left: left - n,
                        kind,
                        flags,
                    };
                }
                Ok(at + n)
            }
        }
    }

    fn on_head(&mut self, out: &mut Out<'_>, consumed: usize) -> Result<(), FilterError> {
        let head = self.head;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & STREAM_ID_MASK;
        let block_max = self.limits.header_block_bytes_max;
        match (kind, self.open.as_mut()) {
            (KIND_HEADERS, None) => {
                if len > block_max {
                    return Err(FilterError::HeaderBlockTooLarge {
                        bytes_max: block_max,
                    });
                }
                self.open = Some(OpenBlock {
                    stream_id,
                    end_stream: flags & FLAG_END_STREAM != 0,
                    continuations: 0,
                });
                self.block.clear();
            }
            (KIND_CONTINUATION, Some(open)) if open.stream_id == stream_id => {
                open.continuations += 1;
                let frames_max = self.limits.continuation_frames_max;
                if open.continuations > frames_max {
                    return Err(FilterError::TooManyContinuations { frames_max });
                }
                if self.block.len() + len > block_max {
                    return Err(FilterError::HeaderBlockTooLarge {
                        bytes_max: block_max,
                    });
                }
            }
            (KIND_CONTINUATION, _) => {
                return Err(FilterError::UnexpectedContinuation { stream_id });
            }
            (_, Some(_)) => return Err(FilterError::ExpectedContinuation { kind }),
            (_, None) => {
                match kind {
                    KIND_SETTINGS if flags & FLAG_ACK == 0 => self.settings_frames += 1,
                    KIND_PING if flags & FLAG_ACK == 0 => self.ping_frames += 1,
                    _ => {}
                }
                out.put(&mut self.pending, &head, consumed);
                self.stage = match len {
                    0 => Stage::Head { have: 0 },
                    left => Stage::Pass { left },
                };
                return Ok(());
            }
        }
        if len == 0 {
            return self.end_frame(out, consumed, kind, flags);
        }
        self.stage = Stage::Collect {
            left: len,
            kind,
            flags,
        };
        Ok(())
    }

    fn end_frame(
        &mut self,
        out: &mut Out<'_>,
        consumed: usize,
        kind: u8,
        flags: u8,
    ) -> Result<(), FilterError> {
        self.stage = Stage::Head { have: 0 };
        if kind == KIND_HEADERS {
            // A HEADERS frame opens the block, so its payload is all of `block`.
            let mut start = 0;
            let mut pad = 0;
            if flags & FLAG_PADDED != 0 {
                pad = usize::from(*self.block.first().ok_or(FilterError::BadPadding)?);
                start = 1;
            }
            if flags & FLAG_PRIORITY != 0 {
                start += PRIORITY_BYTES;
            }
            let end = self
                .block
                .len()
                .checked_sub(pad)
                .filter(|&end| end >= start)
                .ok_or(FilterError::BadPadding)?;
            self.block.truncate(end);
            self.block.drain(..start);
        }
        if flags & FLAG_END_HEADERS != 0 {
            self.finish_block(out, consumed)?;
        }
        Ok(())
    }

    /// Decodes the complete block, re-encodes it and writes its frames.
    fn finish_block(&mut self, out: &mut Out<'_>, consumed: usize) -> Result<(), FilterError> {
        let open = self
            .open
            .take()
            .expect("a collected frame belongs to an open block");
        let encoded = &mut self.encoded;
        encoded.clear();
        self.decoder
            .decode(&self.block, self.limits.header_list_bytes_max, |field| {
                let value = rewrite_authority(field.name, field.value).unwrap_or(field.value);
                hpack::encode_literal(encoded, Field { value, ..field });
            })?;
        self.block.clear();
        shrink(&mut self.block, self.limits.retained_bytes_max);
        let frame_max = self.limits.output_frame_bytes_max;
        let frames = self.encoded.len().div_ceil(frame_max).max(1);
        for i in 0..frames {
            let start = i * frame_max;
            let chunk = &self.encoded[start..self.encoded.len().min(start + frame_max)];
            let (kind, mut flags) = match i {
                0 if open.end_stream => (KIND_HEADERS, FLAG_END_STREAM),
                0 => (KIND_HEADERS, 0),
                _ => (KIND_CONTINUATION, 0),
            };
            if i + 1 == frames {
                flags |= FLAG_END_HEADERS;
            }
            let head = frame_head(chunk.len(), kind, flags, open.stream_id);
            out.put(&mut self.pending, &head, consumed);
            out.put(&mut self.pending, chunk, consumed);
        }
        shrink(&mut self.encoded, self.limits.retained_bytes_max);
        Ok(())
    }
}

fn frame_head(len: usize, kind: u8, flags: u8, stream_id: u32) -> [u8; FRAME_HEAD_BYTES] {
    let len = u32::try_from(len).expect("output frames are at most output_frame_bytes_max");
    let [_, l0, l1, l2] = len.to_be_bytes();
    let [s0, s1, s2, s3] = stream_id.to_be_bytes();
    [l0, l1, l2, kind, flags, s0, s1, s2, s3]
}

fn shrink(buf: &mut Vec<u8>, retained_bytes_max: usize) {
    if buf.capacity() > retained_bytes_max {
        buf.shrink_to(retained_bytes_max.max(buf.len()));
    }
}

/// The authority to send on instead of `value`, when `name` is `:authority` and `value`
/// carries a scheme: `http://127.0.0.1:2379/x` gives `127.0.0.1:2379`, and a gRPC-style
/// target with an empty host part (`dns:///127.0.0.1:2379`) gives `127.0.0.1:2379` too.
pub(crate) fn rewrite_authority<'a>(name: &[u8], value: &'a [u8]) -> Option<&'a [u8]> {
    if name != b":authority" {
        return None;
    }
    let at = value.windows(3).position(|w| w == b"://")?;
    let rest = &value[at + 3..];
    let rest = &rest[rest.iter().take_while(|&&b| b == b'/').count()..];
    let end = rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Fuzzing entry (`fuzz/fuzz_targets/grpc_hpack.rs`). The first byte picks a read size; the
/// rest is used twice: as one HPACK block (whatever decodes must re-encode into a block that
/// decodes to the same fields, `:authority` rewritten, with no dynamic table), and as the
/// frames a client sends after the preface, fed to a filter in reads of that size. Nothing may
/// panic, and the filter may not grow its pending output past one read and one block.
pub fn fuzz_hpack(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    fuzz_block(rest);
    fuzz_stream(rest, usize::from(selector % 64) + 1);
}

type OwnedField = (Vec<u8>, Vec<u8>, bool);

fn fuzz_block(block: &[u8]) {
    let limits = FilterLimits::default();
    let mut want: Vec<OwnedField> = Vec::new();
    let mut encoded = Vec::new();
    let decoded = Decoder::new(limits.dynamic_table_bytes_max).decode(
        block,
        limits.header_list_bytes_max,
        |field| {
            let value = rewrite_authority(field.name, field.value).unwrap_or(field.value);
            want.push((field.name.to_vec(), value.to_vec(), field.never_indexed));
            hpack::encode_literal(&mut encoded, Field { value, ..field });
        },
    );
    if decoded.is_err() {
        return;
    }
    let mut got: Vec<OwnedField> = Vec::new();
    Decoder::new(0)
        .decode(&encoded, limits.header_list_bytes_max, |f| {
            got.push((f.name.to_vec(), f.value.to_vec(), f.never_indexed));
        })
        .expect("a re-encoded block decodes without a dynamic table");
    assert_eq!(got, want);
}

fn fuzz_stream(frames: &[u8], read_bytes: usize) {
    let limits = FilterLimits::default();
    let pending_bytes_max =
        limits.pending_bytes_max + limits.header_list_bytes_max + 8 * FRAME_HEAD_BYTES + read_bytes;
    let mut filter = AuthorityFilter::new(limits);
    let stream: Vec<u8> = H2_PREFACE.iter().chain(frames).copied().collect();
    let mut at = 0;
    let mut buf = vec![0u8; read_bytes];
    loop {
        let read = filter.read(&mut buf, |into| {
            let n = into.len().min(stream.len() - at);
            into[..n].copy_from_slice(&stream[at..at + n]);
            at += n;
            Ok(n)
        });
        assert!(filter.pending.len() <= pending_bytes_max);
        assert!(filter.held.len() <= read_bytes);
        if !matches!(read, Ok(n) if n > 0) {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
