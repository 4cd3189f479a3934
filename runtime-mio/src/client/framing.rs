//! gRPC's length-prefixed message framing: one flag byte (compressed or not), then a 4-byte
//! big-endian length, then the message.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub(crate) const PREFIX_BYTES: usize = 5;

/// Why the request stream could not be split into messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Flag 1: we advertise no compression, so a compressed message cannot be read.
    Compressed,
    /// A flag other than 0 or 1.
    BadFlag(u8),
    /// The prefix announces `len` bytes, more than the decoder's `len_max`.
    TooLarge { len: usize, len_max: usize },
    /// The stream ended inside a message.
    Truncated,
}

/// Prefixes `message` for a DATA frame.
pub(crate) fn encode(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(PREFIX_BYTES + message.len());
    out.put_u8(0);
    // Messages are bounded far below 4 GiB by `pending_send_bytes_max`.
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

/// Splits the DATA chunks of one request stream into messages.
#[derive(Debug)]
pub(crate) struct MessageDecoder {
    buf: BytesMut,
    message_bytes_max: usize,
}

impl MessageDecoder {
    pub(crate) fn new(message_bytes_max: usize) -> MessageDecoder {
        MessageDecoder {
            buf: BytesMut::new(),
            message_bytes_max,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete message, checking the prefix as soon as it is in, so an oversized
    /// message is refused before it is buffered.
    pub(crate) fn next_message(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.buf.len() < PREFIX_BYTES {
            return Ok(None);
        }
        match self.buf[0] {
            0 => {}
            1 => return Err(FrameError::Compressed),
            flag => return Err(FrameError::BadFlag(flag)),
        }
        let len_bytes = [self.buf[1], self.buf[2], self.buf[3], self.buf[4]];
        let len = usize::try_from(u32::from_be_bytes(len_bytes)).unwrap_or(usize::MAX);
        if len > self.message_bytes_max {
            return Err(FrameError::TooLarge {
                len,
                len_max: self.message_bytes_max,
            });
        }
        if self.buf.len() < PREFIX_BYTES + len {
            self.buf.reserve(PREFIX_BYTES + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(PREFIX_BYTES);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// At END_STREAM: a partial message left over is a framing error.
    pub(crate) fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}
