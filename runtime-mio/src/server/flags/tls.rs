//! The certificate flags of one side of the member (clients or peers).

use std::path::PathBuf;

/// Certificate files for one side (clients or peers).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    trusted_ca_file: Option<PathBuf>,
    client_cert_auth: bool,
}

impl TlsFiles {
    /// The side's files as its flags named them, and whether it asked for client certificates.
    pub(super) fn new(
        cert_file: Option<PathBuf>,
        key_file: Option<PathBuf>,
        trusted_ca_file: Option<PathBuf>,
        client_cert_auth: bool,
    ) -> TlsFiles {
        TlsFiles {
            cert_file,
            key_file,
            trusted_ca_file,
            client_cert_auth,
        }
    }

    /// (cert, key) if both are given: TLS is on.
    pub fn cert_and_key(&self) -> Option<(&PathBuf, &PathBuf)> {
        Some((self.cert_file.as_ref()?, self.key_file.as_ref()?))
    }

    pub fn trusted_ca_file(&self) -> Option<&PathBuf> {
        self.trusted_ca_file.as_ref()
    }

    /// Client certificates are required (etcd turns this on when a trusted CA is given with
    /// `--client-cert-auth`).
    pub fn client_cert_auth(&self) -> bool {
        self.client_cert_auth
    }
}
