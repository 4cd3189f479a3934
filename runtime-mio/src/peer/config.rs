//! Configuration of the peer transport, and the rustls configs for mutual TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::error::{PeerError, TlsConfigError};
use super::wire::CLUSTER_TOKEN_BYTES_MAX;

/// Settings of a [`crate::peer::PeerTransport`]. Built with [`PeerConfig::new`] and the
/// `with_*` methods; every limit has a default that suits a 3–7 member cluster.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    local_id: u64,
    cluster_token: Vec<u8>,
    tls: Option<PeerTls>,
    frame_bytes_max: usize,
    send_queue_bytes_max: usize,
    connections_max: usize,
    peers_max: usize,
    read_batch_bytes_max: usize,
    backoff_min_ms: u64,
    backoff_max_ms: u64,
    handshake_timeout_ms: u64,
    keepalive_interval_ms: u64,
    idle_timeout_ms: u64,
    seed: u64,
}

impl PeerConfig {
    /// Defaults for member `local_id` of the cluster named by `cluster_token`
    /// (etcd's `--initial-cluster-token`), over plaintext TCP.
    pub fn new(local_id: u64, cluster_token: impl Into<Vec<u8>>) -> Self {
        PeerConfig {
            local_id,
            cluster_token: cluster_token.into(),
            tls: None,
            frame_bytes_max: 16 << 20,
            send_queue_bytes_max: 64 << 20,
            connections_max: 64,
            peers_max: 64,
            read_batch_bytes_max: 1 << 20,
            backoff_min_ms: 50,
            // Half of etcd's default election timeout: a restarted member is redialed well
            // before it would give up on its leader (lower ids dial, so it cannot dial them).
            backoff_max_ms: 500,
            handshake_timeout_ms: 2_000,
            keepalive_interval_ms: 1_000,
            idle_timeout_ms: 10_000,
            seed: local_id,
        }
    }

    /// Mutual TLS (or server-only TLS, as the `ServerConfig` says) on every peer link.
    pub fn with_tls(mut self, tls: PeerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Largest frame payload sent or accepted; a larger incoming frame closes the connection.
    /// One frame carries one core message, snapshots included, so this must exceed the
    /// largest snapshot tallyd sends (and `send_queue_bytes_max` must hold such a frame).
    pub fn with_frame_bytes_max(mut self, bytes: usize) -> Self {
        self.frame_bytes_max = bytes;
        self
    }

    /// Bytes (frame headers included) queued per peer; frames that do not fit are dropped.
    pub fn with_send_queue_bytes_max(mut self, bytes: usize) -> Self {
        self.send_queue_bytes_max = bytes;
        self
    }

    /// Inbound connections open at once (handshaking or established); more are refused.
    pub fn with_connections_max(mut self, connections: usize) -> Self {
        self.connections_max = connections;
        self
    }

    /// Peers this transport can know at once.
    pub fn with_peers_max(mut self, peers: usize) -> Self {
        self.peers_max = peers;
        self
    }

    /// Bytes read from one connection per event before yielding to other work.
    pub fn with_read_batch_bytes_max(mut self, bytes: usize) -> Self {
        self.read_batch_bytes_max = bytes;
        self
    }

    /// Reconnect backoff bounds.
    pub fn with_backoff_ms(mut self, min_ms: u64, max_ms: u64) -> Self {
        self.backoff_min_ms = min_ms;
        self.backoff_max_ms = max_ms;
        self
    }

    /// Time for TCP connect + TLS + hello/ack before the attempt is abandoned.
    pub fn with_handshake_timeout_ms(mut self, ms: u64) -> Self {
        self.handshake_timeout_ms = ms;
        self
    }

    /// An idle established link sends an empty keepalive frame this often, and closes when
    /// nothing arrived for `idle_ms` (a silently dead peer or a half-open connection).
    pub fn with_keepalive_ms(mut self, interval_ms: u64, idle_ms: u64) -> Self {
        self.keepalive_interval_ms = interval_ms;
        self.idle_timeout_ms = idle_ms;
        self
    }

    /// Seed of the backoff jitter PRNG (default: the member id).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// This member's id.
    pub fn local_id(&self) -> u64 {
        self.local_id
    }

    pub(crate) fn validate(&self) -> Result<(), PeerError> {
        let check = |ok: bool, what: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(PeerError::InvalidConfig(what))
            }
        };
        check(
            self.cluster_token.len() <= CLUSTER_TOKEN_BYTES_MAX,
            "cluster token longer than 255 bytes",
        )?;
        check(
            self.frame_bytes_max >= 1 && self.frame_bytes_max <= u32::MAX as usize,
            "frame_bytes_max must be in 1..=u32::MAX",
        )?;
        check(
            self.send_queue_bytes_max >= self.frame_bytes_max + 4,
            "send_queue_bytes_max must hold one frame_bytes_max frame",
        )?;
        check(self.connections_max >= 1, "connections_max must be >= 1")?;
        check(self.peers_max >= 1, "peers_max must be >= 1")?;
        check(
            self.read_batch_bytes_max >= 1,
            "read_batch_bytes_max must be >= 1",
        )?;
        check(
            self.backoff_min_ms >= 1 && self.backoff_max_ms >= self.backoff_min_ms,
            "backoff must satisfy 1 <= backoff_min_ms <= backoff_max_ms",
        )?;
        check(
            self.handshake_timeout_ms >= 1,
            "handshake_timeout_ms must be >= 1",
        )?;
        check(
            self.keepalive_interval_ms >= 1 && self.idle_timeout_ms > self.keepalive_interval_ms,
            "keepalive must satisfy 1 <= interval < idle timeout",
        )?;
        Ok(())
    }

    pub(crate) fn cluster_token(&self) -> &[u8] {
        &self.cluster_token
    }
    pub(crate) fn tls(&self) -> Option<&PeerTls> {
        self.tls.as_ref()
    }
    pub(crate) fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }
    pub(crate) fn send_queue_bytes_max(&self) -> usize {
        self.send_queue_bytes_max
    }
    pub(crate) fn connections_max(&self) -> usize {
        self.connections_max
    }
    pub(crate) fn peers_max(&self) -> usize {
        self.peers_max
    }
    pub(crate) fn read_batch_bytes_max(&self) -> usize {
        self.read_batch_bytes_max
    }
    pub(crate) fn backoff_ms(&self) -> (u64, u64) {
        (self.backoff_min_ms, self.backoff_max_ms)
    }
    pub(crate) fn handshake_timeout_ms(&self) -> u64 {
        self.handshake_timeout_ms
    }
    pub(crate) fn keepalive_interval_ms(&self) -> u64 {
        self.keepalive_interval_ms
    }
    pub(crate) fn idle_timeout_ms(&self) -> u64 {
        self.idle_timeout_ms
    }
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }
}

/// rustls configurations for peer links: the acceptor side uses `server`, the dialer `client`.
///
/// The dialer verifies the acceptor's certificate against `server_name`, or when none is set,
/// against the IP address it dials (as etcd checks the peer URL's host).
#[derive(Debug, Clone)]
pub struct PeerTls {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl PeerTls {
    /// Uses ready-made rustls configs.
    pub fn new(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Self {
        PeerTls {
            server,
            client,
            server_name: None,
        }
    }

    /// Verifies every acceptor against this name instead of the dialed IP address.
    pub fn with_server_name(mut self, name: ServerName<'static>) -> Self {
        self.server_name = Some(name);
        self
    }

    /// Builds both configs from PEM files, as etcd's `--peer-cert-file`, `--peer-key-file`,
    /// `--peer-trusted-ca-file` and `--peer-client-cert-auth` flags describe them.
    pub fn from_pem_files(
        cert_file: &Path,
        key_file: &Path,
        trusted_ca_file: &Path,
        client_cert_auth: bool,
    ) -> Result<Self, TlsConfigError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        Self::from_pem(
            &read(cert_file)?,
            &read(key_file)?,
            &read(trusted_ca_file)?,
            client_cert_auth,
        )
    }

    /// Builds both configs from PEM text: this member's certificate chain and key (presented
    /// on both sides of a link) and the CA that signs members' certificates. With
    /// `client_cert_auth` the acceptor demands a client certificate signed by that CA.
    pub fn from_pem(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        trusted_ca_pem: &[u8],
        client_cert_auth: bool,
    ) -> Result<Self, TlsConfigError> {
        let chain = parse_certs(cert_chain_pem, "certificate")?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem_error("private key", e))?;
        let mut roots = RootCertStore::empty();
        for ca in parse_certs(trusted_ca_pem, "trusted CA")? {
            roots.add(ca).map_err(TlsConfigError::BadTrustAnchor)?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let server_builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rustls)?;
        let server_builder = if client_cert_auth {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| TlsConfigError::Verifier(e.to_string()))?;
            server_builder.with_client_cert_verifier(verifier)
        } else {
            server_builder.with_no_client_auth()
        };
        let server = server_builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(TlsConfigError::Rustls)?;

        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rustls)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(TlsConfigError::Rustls)?;
        Ok(Self::new(Arc::new(server), Arc::new(client)))
    }

    pub(crate) fn server(&self) -> &Arc<ServerConfig> {
        &self.server
    }
    pub(crate) fn client(&self) -> &Arc<ClientConfig> {
        &self.client
    }
    pub(crate) fn server_name(&self) -> Option<&ServerName<'static>> {
        self.server_name.as_ref()
    }
}

fn parse_certs(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, e))?;
    if certs.is_empty() {
        return Err(TlsConfigError::Empty(what));
    }
    Ok(certs)
}

fn pem_error(what: &'static str, error: rustls::pki_types::pem::Error) -> TlsConfigError {
    match error {
        rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::Empty(what),
        other => TlsConfigError::Pem {
            what,
            detail: other.to_string(),
        },
    }
}
