//! rustls configurations for the client port (ring provider, ALPN `h2` then `http/1.1`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a TLS configuration could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or held no usable item.
    Pem {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    /// A PEM file held no certificate.
    NoCertificate { path: PathBuf },
    /// `require_client_cert` without a CA to check client certificates against.
    ClientAuthWithoutCa,
    /// A trusted CA certificate was refused.
    BadCa { path: PathBuf, error: rustls::Error },
    /// The client or server verifier could not be built.
    Verifier(rustls::server::VerifierBuilderError),
    /// rustls refused the configuration (e.g. key does not match certificate).
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem { path, error } => write!(f, "{}: {error}", path.display()),
            TlsError::NoCertificate { path } => {
                write!(f, "{}: no certificate found", path.display())
            }
            TlsError::ClientAuthWithoutCa => {
                write!(f, "client certificate auth needs a trusted CA file")
            }
            TlsError::BadCa { path, error } => write!(f, "{}: {error}", path.display()),
            TlsError::Verifier(e) => write!(f, "certificate verifier: {e}"),
            TlsError::Config(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// ALPN protocols offered by the server, in preference order.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |error| TlsError::Pem {
        path: path.to_path_buf(),
        error,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| TlsError::Pem {
        path: path.to_path_buf(),
        error,
    })
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|error| TlsError::BadCa {
            path: path.to_path_buf(),
            error,
        })?;
    }
    Ok(Arc::new(roots))
}

/// The server side, as etcd's `--cert-file`, `--key-file`, `--trusted-ca-file` and
/// `--client-cert-auth` build it. With a CA but without `require_client_cert`, a client
/// certificate is checked when offered and not required.
pub fn server_config(
    cert_pem_path: &Path,
    key_pem_path: &Path,
    trusted_ca_pem_path: Option<&Path>,
    require_client_cert: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(cert_pem_path)?;
    let key = load_key(key_pem_path)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match (trusted_ca_pem_path, require_client_cert) {
        (None, true) => return Err(TlsError::ClientAuthWithoutCa),
        (None, false) => builder.with_no_client_auth(),
        (Some(ca), require) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(load_roots(ca)?, provider());
            let verifier = if require {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(TlsError::Verifier)?)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// The client side, for tests and tools: trusts `trusted_ca_pem_path`, presents
/// `client_cert` (certificate and key PEM paths) when given, and offers `alpn`.
pub fn client_config(
    trusted_ca_pem_path: &Path,
    client_cert: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier =
        WebPkiServerVerifier::builder_with_provider(load_roots(trusted_ca_pem_path)?, provider())
            .build()
            .map_err(TlsError::Verifier)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_webpki_verifier(verifier);
    let mut config = match client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(TlsError::Config)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
