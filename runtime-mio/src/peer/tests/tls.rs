use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::harness::{Net, RawPeer, config, listener};
use super::plain::exchange;
use crate::peer::{PeerTls, TlsConfigError};

/// PEM text of a CA and of a member certificate (IP SAN 127.0.0.1) and key it signed.
pub(super) struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

pub(super) fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

pub(super) fn peer_tls(pki: &Pki) -> PeerTls {
    PeerTls::from_pem(
        pki.cert_pem.as_bytes(),
        pki.key_pem.as_bytes(),
        pki.ca_pem.as_bytes(),
        true,
    )
    .unwrap()
}

#[test]
fn mutual_tls_three_members_exchange_frames() {
    let pki = pki();
    // Exercise the file-based helper, as tallyd's --peer-* flags use it.
    let dir = std::env::temp_dir().join(format!("tally-peer-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, ca) = (
        dir.join("peer.crt"),
        dir.join("peer.key"),
        dir.join("ca.crt"),
    );
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let tls = PeerTls::from_pem_files(&cert, &key, &ca, true).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let ids = [1, 2, 3];
    let (mut net, _) = Net::cluster(&ids, |id| config(id).with_tls(tls.clone()));
    exchange(&mut net, &ids);
}

#[test]
fn a_dialer_without_client_certificate_is_rejected() {
    let pki = pki();
    let good = peer_tls(&pki);
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let anonymous_client =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    // Same server side, but the client side presents no certificate.
    let anonymous = PeerTls::from_pem(
        pki.cert_pem.as_bytes(),
        pki.key_pem.as_bytes(),
        pki.ca_pem.as_bytes(),
        true,
    )
    .map(|t| PeerTls::new(t.server().clone(), Arc::new(anonymous_client)))
    .unwrap();

    let l1 = listener();
    let l2 = listener();
    let l3 = listener();
    let (a1, a2, a3) = (
        l1.local_addr().unwrap(),
        l2.local_addr().unwrap(),
        l3.local_addr().unwrap(),
    );
    let mut net = Net::new();
    net.start(config(1).with_tls(anonymous), l1, &[(2, a2), (3, a3)]);
    net.start(config(2).with_tls(good.clone()), l2, &[(1, a1), (3, a3)]);
    net.start(config(3).with_tls(good), l3, &[(1, a1), (2, a2)]);
    net.run_until("2 and 3 connect, 1 is rejected twice", |net| {
        net.transport(2).is_connected(3)
            && net.transport(2).stats().handshakes_rejected() >= 2
            && net.transport(3).stats().handshakes_rejected() >= 2
    });
    for id in [2, 3] {
        assert!(!net.transport(1).is_connected(id));
        assert!(!net.transport(id).is_connected(1));
    }

    // Plaintext garbage on a TLS peer port is rejected too, and the good link stays.
    let mut garbage = RawPeer::connect(a3);
    garbage.write_raw(b"\x05\x00\x00\x00hello");
    net.run_until("garbage closed", |_| garbage.is_closed());
    assert!(net.transport(2).is_connected(3) && net.transport(3).is_connected(2));
}

#[test]
fn bad_pem_is_a_typed_error() {
    let pki = pki();
    let err = PeerTls::from_pem(
        b"nothing",
        pki.key_pem.as_bytes(),
        pki.ca_pem.as_bytes(),
        true,
    )
    .unwrap_err();
    assert!(matches!(err, TlsConfigError::Empty("certificate")), "{err}");
    let err =
        PeerTls::from_pem(pki.cert_pem.as_bytes(), b"", pki.ca_pem.as_bytes(), true).unwrap_err();
    assert!(matches!(err, TlsConfigError::Empty("private key")), "{err}");
    let err = PeerTls::from_pem_files(
        std::path::Path::new("/nonexistent/peer.crt"),
        std::path::Path::new("/nonexistent/peer.key"),
        std::path::Path::new("/nonexistent/ca.crt"),
        true,
    )
    .unwrap_err();
    assert!(matches!(err, TlsConfigError::Read { .. }), "{err}");
}
