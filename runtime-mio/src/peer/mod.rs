//! The peer transport: one connection per member pair carrying length-prefixed frames.
//!
//! # Wire
//!
//! Every frame is a `u32` little-endian payload length followed by the payload, at most
//! `frame_bytes_max` bytes. An empty frame is a keepalive and is never reported.
//!
//! The member with the **lower id dials** the higher one, so a pair has exactly one link,
//! used in both directions. The dialer's first frame is a hello: magic `TALLYHLO`, protocol
//! version `u32`, cluster token length `u32` and bytes (etcd's `--initial-cluster-token`,
//! at most 255), its member id `u64` and the member id it expects to reach `u64`. The
//! acceptor checks version, token, both ids and the dial direction, and answers with an ack
//! (magic `TALLYACK`, version `u32`, status `u32`, its member id `u64`); any status other
//! than 0 is followed by a close. Anything else on the peer port closes that connection
//! with one log line. When a member dials again while its old link still looks alive (a
//! restart, a half-open connection), the newest connection wins and the old one is closed.
//!
//! With [`PeerTls`], every link is TLS (rustls, ring). [`PeerTls::from_pem_files`] builds
//! mutual TLS from etcd's `--peer-*` flags; the dialer checks the acceptor's certificate
//! against the dialed IP address unless [`PeerTls::with_server_name`] says otherwise.
//!
//! # Queueing
//!
//! [`PeerTransport::send`] queues a frame per peer, bounded by `send_queue_bytes_max`; a frame
//! that does not fit is dropped and counted (Raft retries). Frames for a peer that is not
//! connected **stay queued** (same bound) and are written once a link is up. When a link
//! breaks, a frame that was partly written is discarded, and the frames behind it are kept.
//!
//! # Driving it from a mio loop
//!
//! 1. Create the transport with the bound listener and a `token_base`; it owns the tokens
//!    `token_base .. token_base + LISTENERS_MAX + connections_max + peers_max`.
//!    [`PeerTransport::add_listener`] accepts peers on more addresses.
//! 2. Poll with a timeout no later than [`PeerTransport::next_deadline`] (it may be in the
//!    past: then poll without blocking).
//! 3. For every event whose token the transport [owns](PeerTransport::owns), call
//!    [`PeerTransport::handle_event`].
//! 4. Call [`PeerTransport::handle_timeouts`] once per turn (dials, timeouts, keepalives,
//!    resumed reads).
//! 5. Drain [`PeerTransport::poll_event`] until `None`: feed frames to core, report
//!    `Disconnected` peers as unreachable.
//! 6. [`PeerTransport::send`] the turn's outgoing messages, then call
//!    [`PeerTransport::flush`] once.
//!
//! Reads stop after `read_batch_bytes_max` bytes per connection per turn; the rest is read
//! in step 4 of the next turn, so the events of one turn stay bounded.

mod backoff;
mod config;
mod conn;
mod error;
mod event;
mod frame;
mod jitter;
#[cfg(any(test, feature = "testing"))]
mod proxy;
mod transport;
mod wire;

#[cfg(test)]
mod tests;

pub use config::{PeerConfig, PeerTls};
pub use error::{PeerError, TlsConfigError};
pub use event::{PeerEvent, PeerStats};
pub use frame::FrameKind;
#[cfg(any(test, feature = "testing"))]
pub use proxy::FaultProxy;
pub use transport::{LISTENERS_MAX, PeerTransport};

/// Feeds arbitrary bytes to the peer wire decoders (frame splitter, hello, ack).
///
/// This is the body of a `peer_wire` fuzz target. It must never panic.
pub fn fuzz_peer_wire(data: &[u8]) {
    let bytes = bytes::Bytes::copy_from_slice(data);
    let _ = wire::decode_hello(&bytes);
    let _ = wire::decode_ack(&bytes);
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(frame)) = wire::split_frame(&mut buf, wire::HANDSHAKE_FRAME_BYTES_MAX) {
        let _ = wire::decode_hello(&frame);
        let _ = wire::decode_ack(&frame);
    }
}
