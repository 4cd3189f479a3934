use std::fmt;
use std::io;
use std::path::PathBuf;

/// Errors from the peer transport's API (not from the network: network trouble closes one
/// connection and is reported as [`crate::peer::PeerEvent::Disconnected`] and a log line).
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerError {
    /// A socket call on the listener or the registry failed.
    Io {
        /// What the transport was doing.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The configuration is inconsistent.
    InvalidConfig(&'static str),
    /// The member id is already a peer.
    DuplicatePeer(u64),
    /// The member id is not a peer.
    UnknownPeer(u64),
    /// The member id is this member's own id.
    SelfPeer(u64),
    /// Adding the peer would exceed `peers_max`.
    TooManyPeers {
        /// The configured limit.
        max: usize,
    },
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { op, source } => write!(f, "peer transport: {op}: {source}"),
            Self::InvalidConfig(what) => write!(f, "invalid peer configuration: {what}"),
            Self::DuplicatePeer(id) => write!(f, "member {id:x} is already a peer"),
            Self::UnknownPeer(id) => write!(f, "member {id:x} is not a peer"),
            Self::SelfPeer(id) => write!(f, "member {id:x} is this member"),
            Self::TooManyPeers { max } => write!(f, "more than peers_max ({max}) peers"),
        }
    }
}

impl std::error::Error for PeerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Errors from building the peer TLS configuration out of PEM files.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// PEM text could not be parsed.
    Pem {
        /// Which input: "certificate", "private key" or "trusted CA".
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// The input holds no item of the expected kind.
    Empty(&'static str),
    /// A trusted CA certificate was rejected as a trust anchor.
    BadTrustAnchor(rustls::Error),
    /// The client certificate verifier could not be built.
    Verifier(String),
    /// rustls refused the certificate, key or protocol settings.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(f, "reading {}: {source}", path.display()),
            Self::Pem { what, detail } => write!(f, "parsing {what} PEM: {detail}"),
            Self::Empty(what) => write!(f, "no {what} found in PEM input"),
            Self::BadTrustAnchor(e) => write!(f, "trusted CA certificate rejected: {e}"),
            Self::Verifier(e) => write!(f, "client certificate verifier: {e}"),
            Self::Rustls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::BadTrustAnchor(e) | Self::Rustls(e) => Some(e),
            _ => None,
        }
    }
}
