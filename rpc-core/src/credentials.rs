//! A node's TLS credentials: the cluster CA it trusts, its certificate and
//! key, and the identity its certificate names. Plain data read from files;
//! the transport builds its TLS configuration from it.
//!
//! A node certificate (made by [`crate::pki`]) names its node in a
//! subject alternative name `distobj:node:NAME`, marks an administrator
//! with `distobj:role:admin`, and is valid for the DNS name
//! [`TLS_SERVER_NAME`], which every node presents and checks.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The DNS name every node certificate is valid for, and that a dialing
/// node checks: nodes are dialed by address, and their identity is the name
/// in their certificate, not a host name.
pub const TLS_SERVER_NAME: &str = "node.distobj";

/// Prefix of the subject alternative name (a URI) that names a node.
pub(crate) const NODE_URI_PREFIX: &str = "distobj:node:";

/// Subject alternative name (a URI) of an administrator's certificate.
pub(crate) const ADMIN_URI: &str = "distobj:role:admin";

/// File of the CA certificate in a credentials directory.
pub const CA_FILE: &str = "ca.pem";
/// File of the node certificate in a credentials directory.
pub const CERT_FILE: &str = "node.pem";
/// File of the node's private key in a credentials directory.
pub const KEY_FILE: &str = "node.key";

/// What a verified certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The node name the certificate was issued for.
    pub name: String,
    /// True for an administrator's credential.
    pub admin: bool,
}

/// A node's TLS credentials (see the module doc).
pub struct TlsCredentials {
    /// Certificates of the cluster CA: peers must present a chain to one.
    pub(crate) ca: Vec<CertificateDer<'static>>,
    /// This node's certificate chain, its own first.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// This node's private key.
    pub(crate) key: PrivateKeyDer<'static>,
    /// Who this node's certificate says it is.
    pub(crate) identity: CertIdentity,
}

impl fmt::Debug for TlsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCredentials")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Clone for TlsCredentials {
    fn clone(&self) -> Self {
        TlsCredentials {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            identity: self.identity.clone(),
        }
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl TlsCredentials {
    /// Reads [`CA_FILE`], [`CERT_FILE`] and [`KEY_FILE`] from `dir` (what
    /// `client pki issue` writes).
    ///
    /// # Errors
    /// When a file is missing or unreadable, holds no PEM item of its kind,
    /// or the certificate names no node.
    pub fn from_dir(dir: impl AsRef<Path>) -> io::Result<TlsCredentials> {
        let dir = dir.as_ref();
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        Self::from_pem(&read(CA_FILE)?, &read(CERT_FILE)?, &read(KEY_FILE)?)
    }

    /// Credentials from PEM text: the CA certificate(s), this node's
    /// certificate chain, its private key.
    ///
    /// # Errors
    /// As [`TlsCredentials::from_dir`].
    pub fn from_pem(ca: &[u8], cert: &[u8], key: &[u8]) -> io::Result<TlsCredentials> {
        let certs = |pem: &[u8], what: &str| -> io::Result<Vec<CertificateDer<'static>>> {
            let all = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(format!("{what}: {e}")))?;
            if all.is_empty() {
                return Err(invalid(format!("{what}: no certificate")));
            }
            Ok(all)
        };
        let ca = certs(ca, CA_FILE)?;
        let chain = certs(cert, CERT_FILE)?;
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(format!("{KEY_FILE}: {e}")))?;
        let identity = identity_of(&chain[0]).map_err(|e| invalid(format!("{CERT_FILE}: {e}")))?;
        let creds = TlsCredentials {
            ca,
            chain,
            key,
            identity,
        };
        // Building both configurations checks that key and certificate go
        // together and that the CA certificate can anchor a chain.
        creds.server_config().map_err(invalid)?;
        creds.client_config().map_err(invalid)?;
        Ok(creds)
    }

    fn roots(&self) -> Result<Arc<rustls::RootCertStore>, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in &self.ca {
            roots
                .add(c.clone())
                .map_err(|e| format!("{CA_FILE}: unusable CA certificate: {e}"))?;
        }
        Ok(Arc::new(roots))
    }

    /// The accepting side: TLS 1.3, a certificate of the cluster CA required.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            self.roots()?,
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| format!("cannot verify peers against the CA: {e}"))?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| format!("{CERT_FILE} and {KEY_FILE} do not go together: {e}"))?;
        Ok(Arc::new(config))
    }

    /// The dialing side: TLS 1.3, the peer's certificate checked against
    /// the cluster CA and [`TLS_SERVER_NAME`], ours presented.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| format!("{CERT_FILE} and {KEY_FILE} do not go together: {e}"))?;
        Ok(Arc::new(config))
    }

    /// Who the certificate says this node is.
    pub fn identity(&self) -> &CertIdentity {
        &self.identity
    }
}

/// The node name and role a (DER) certificate carries.
///
/// # Errors
/// When the certificate cannot be parsed or names no node.
pub(crate) fn identity_of(cert: &[u8]) -> Result<CertIdentity, String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) =
        X509Certificate::from_der(cert).map_err(|e| format!("unreadable certificate: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subject alternative names: {e}"))?
        .ok_or("the certificate names no node (no subject alternative names)")?;
    let mut name = None;
    let mut admin = false;
    for n in &san.value.general_names {
        if let GeneralName::URI(uri) = n {
            if let Some(rest) = uri.strip_prefix(NODE_URI_PREFIX) {
                name = Some(rest.to_owned());
            } else if *uri == ADMIN_URI {
                admin = true;
            }
        }
    }
    let name = name.ok_or("the certificate names no node")?;
    check_name(&name)?;
    Ok(CertIdentity { name, admin })
}

/// Fails unless `name` can name a node: 1 to 64 characters of letters,
/// digits, `-`, `_` and `.`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a node name (1 to 64 letters, digits, `-`, `_`, `.`)"
        ))
    }
}
