//! The TLS side of a raw peer: a rustls connector with a node credential as
//! `client pki issue` writes it, so a test can speak the protocol by hand
//! inside a mutually authenticated connection.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// A connector presenting the credential in `dir` (`ca.pem`, `node.pem`,
/// `node.key`) and trusting its CA; nodes answer to `node.distobj`.
pub fn tls_connector(dir: &Path) -> tokio_rustls::TlsConnector {
    let certs = |f: &str| {
        CertificateDer::pem_file_iter(dir.join(f))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs("ca.pem") {
        roots.add(c).unwrap();
    }
    let key = PrivateKeyDer::from_pem_file(dir.join("node.key")).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(certs("node.pem"), key)
    .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}
