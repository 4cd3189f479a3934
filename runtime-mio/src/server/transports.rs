//! Listening sockets: the peer transport and the client (and metrics) gRPC/HTTP servers,
//! with TLS when the certificate flags are given.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::Registry;

use crate::client::{GrpcConfig, GrpcServer};
use crate::peer::{PeerConfig, PeerTransport};
use crate::server::error::{ServerError, io_error};
use crate::server::flags::{Flags, TlsFiles, Url};
use crate::server::identity::Identity;
use crate::server::members::Members;

fn listen(url: &Url, what: &str) -> Result<mio::net::TcpListener, ServerError> {
    let addr = url
        .socket_addr()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    mio::net::TcpListener::bind(addr).map_err(io_error(format!("listen for {what} on {addr}")))
}

fn server_tls(files: &TlsFiles) -> Result<Option<Arc<rustls::ServerConfig>>, ServerError> {
    let Some((cert, key)) = files.cert_and_key() else {
        return Ok(None);
    };
    let config = crate::client::tls::server_config(
        cert,
        key,
        files.trusted_ca_file().map(|p| p.as_path()),
        files.client_cert_auth(),
    )
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok(Some(config))
}

/// The member's listening sockets: the peer transport, the client server, and the metrics
/// server when `--listen-metrics-urls` asks for one.
pub(in crate::server) type Transports = (PeerTransport, GrpcServer, Option<GrpcServer>);

/// Starts the peer transport and the client (and metrics) servers, under the mio tokens from
/// the bases given (peers, clients, metrics).
pub(in crate::server) fn start(
    flags: &Flags,
    identity: &Identity,
    members: &Members,
    registry: &Registry,
    waker: Arc<mio::Waker>,
    (peer_tokens, client_tokens, metrics_tokens): (usize, usize, usize),
) -> Result<Transports, ServerError> {
    let now = Instant::now();
    let peers = start_peers(flags, identity, members, registry, peer_tokens, now)?;
    let clients = start_clients(flags, registry, Arc::clone(&waker), client_tokens)?;
    let metrics = start_metrics(flags, registry, waker, metrics_tokens)?;
    eprintln!(
        "tallyd: member {:x} ({}) serving clients on {}, peers on {}",
        identity.member_id,
        flags.name(),
        clients
            .local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        peers.local_addr()
    );
    Ok((peers, clients, metrics))
}

fn start_clients(
    flags: &Flags,
    registry: &Registry,
    waker: Arc<mio::Waker>,
    token_base: usize,
) -> Result<GrpcServer, ServerError> {
    let urls = flags.listen_client_urls();
    let tls = if urls.iter().any(Url::is_tls) {
        server_tls(flags.client_tls())?
    } else {
        None
    };
    let tls_for = |url: &Url| if url.is_tls() { tls.clone() } else { None };
    let (first, rest) = urls.split_first().expect("flags give a client URL");
    let mut server = GrpcServer::new(
        listen(first, "clients")?,
        token_base,
        registry,
        waker,
        grpc_config(flags),
        tls_for(first),
    )
    .map_err(io_error("start client server"))?;
    for url in rest {
        server
            .add_listener(listen(url, "clients")?, registry, tls_for(url))
            .map_err(io_error(format!("serve clients on {url}")))?;
    }
    Ok(server)
}

fn start_metrics(
    flags: &Flags,
    registry: &Registry,
    waker: Arc<mio::Waker>,
    token_base: usize,
) -> Result<Option<GrpcServer>, ServerError> {
    let Some((first, rest)) = flags.listen_metrics_urls().split_first() else {
        return Ok(None);
    };
    let mut server = GrpcServer::new(
        listen(first, "metrics")?,
        token_base,
        registry,
        waker,
        grpc_config(flags),
        None,
    )
    .map_err(io_error("start metrics server"))?;
    for url in rest {
        server
            .add_listener(listen(url, "metrics")?, registry, None)
            .map_err(io_error(format!("serve metrics on {url}")))?;
    }
    Ok(Some(server))
}

fn start_peers(
    flags: &Flags,
    identity: &Identity,
    members: &Members,
    registry: &Registry,
    token_base: usize,
    now: Instant,
) -> Result<PeerTransport, ServerError> {
    let [first, rest @ ..] = flags.listen_peer_urls() else {
        unreachable!("--listen-peer-urls has a default");
    };
    let listener = listen(first, "peers")?;
    let mut config = peer_config(identity);
    let files = flags.peer_tls();
    if let Some((cert, key)) = files.cert_and_key() {
        // Peer links always verify the other member against the trusted CA (mutual TLS).
        let ca = files
            .trusted_ca_file()
            .ok_or_else(|| ServerError::Tls("peer TLS needs --peer-trusted-ca-file".into()))?;
        let tls = crate::peer::PeerTls::from_pem_files(cert, key, ca, true)
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        config = config.with_tls(tls);
    }
    let peers: Vec<(u64, SocketAddr)> = members
        .list()
        .into_iter()
        .filter(|m| m.id != identity.member_id)
        .filter_map(|m| Some((m.id, peer_addr(m.peer_urls.first()?)?)))
        .collect();
    let peer_error = |what: String| {
        move |e: crate::peer::PeerError| ServerError::Io {
            what,
            source: std::io::Error::other(e.to_string()),
        }
    };
    let mut transport = PeerTransport::new(listener, token_base, registry, config, &peers, now)
        .map_err(peer_error("start peer transport".into()))?;
    for url in rest {
        transport
            .add_listener(listen(url, "peers")?, registry)
            .map_err(peer_error(format!("serve peers on {url}")))?;
    }
    Ok(transport)
}

fn peer_addr(url: &str) -> Option<SocketAddr> {
    Url::parse(url).ok()?.socket_addr().ok()
}

/// Learns (or re-addresses) member `id` at peer URL `url`.
pub(in crate::server) fn add_peer(
    peers: &mut PeerTransport,
    registry: &Registry,
    id: u64,
    url: &str,
) {
    let Some(addr) = peer_addr(url) else {
        eprintln!("tallyd: member {id:x} has an unusable peer URL {url:?}");
        return;
    };
    let now = Instant::now();
    if peers.add_peer(id, addr, now).is_err() {
        let _ = peers.update_peer(registry, id, addr, now);
    }
}

fn grpc_config(flags: &Flags) -> GrpcConfig {
    /// etcd's `grpcOverheadBytes`.
    const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
    let request_bytes_max = flags.max_request_bytes() as usize;
    // The gateway's JSON carries keys and values in base64 (4/3), plus field names.
    let json_bytes_max = request_bytes_max.saturating_mul(2).max(64 << 10);
    // Unreadable (no /proc): assume the usual soft limit rather than none.
    let open_files_max = crate::client::open_files_max().unwrap_or(1024);
    GrpcConfig::default()
        // As etcd's gRPC server: a message up to --max-request-bytes plus this allowance is
        // read, and one over --max-request-bytes is then refused as "request is too large"
        // when proposed; one over the allowance is refused by the gRPC layer.
        .with_request_bytes_max(request_bytes_max + GRPC_OVERHEAD_BYTES)
        .with_http1_body_bytes_max(json_bytes_max)
        .with_connections_max(crate::client::connections_max_for_open_files(
            open_files_max,
        ))
        .with_client_ping_interval_ms_min(flags.grpc_keepalive_min_time_ms())
        .with_keepalive_interval_ms(flags.grpc_keepalive_interval_ms())
        .with_keepalive_ack_ms_max(flags.grpc_keepalive_timeout_ms())
}

fn peer_config(identity: &Identity) -> PeerConfig {
    PeerConfig::new(identity.member_id, identity.token.clone())
}
