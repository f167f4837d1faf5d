//! A small cluster PKI (what `client pki` runs): make a CA, issue node
//! credentials signed by it. Keys are ECDSA P-256; certificates are made
//! with rcgen.
//!
//! A CA directory holds `ca.pem` (the certificate) and `ca.key` (its key,
//! readable by its owner only). A node credential directory holds what
//! [`TlsCredentials::from_dir`](crate::TlsCredentials::from_dir) reads:
//! `ca.pem`, `node.pem`, `node.key`.

use crate::credentials::{ADMIN_URI, NODE_URI_PREFIX, TLS_SERVER_NAME, check_name};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::io;
use std::path::Path;

pub use crate::credentials::{CA_FILE, CERT_FILE, KEY_FILE};

/// File of the CA's private key in a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";

/// Days a CA certificate is valid.
const CA_DAYS: i64 = 3650;
/// Days a node certificate is valid.
const NODE_DAYS: i64 = 825;

fn other(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Writes `contents` to a new file `path`, readable by its owner only when
/// `secret`; refuses to overwrite.
fn write_new(path: &Path, contents: &str, secret: bool) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    if secret {
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // An hour of slack for clocks that are a little behind.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

/// Makes a new CA in `dir` (created if missing): `ca.pem` and `ca.key`.
///
/// # Errors
/// When `dir` already holds a CA, or the files cannot be written.
pub fn init_ca(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let key = KeyPair::generate().map_err(|e| other("cannot make a key", e))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "distobj cluster CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, CA_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(|e| other("cannot make the CA certificate", e))?;
    write_new(&dir.join(CA_KEY_FILE), &key.serialize_pem(), true)?;
    write_new(&dir.join(CA_FILE), &cert.pem(), false)
}

/// Issues a credential for node `name` from the CA in `ca_dir` into
/// `out_dir` (created if missing): `ca.pem`, `node.pem`, `node.key`. With
/// `admin`, the credential may change what other nodes own (names, data).
///
/// # Errors
/// When `name` is not a node name, the CA cannot be read, or `out_dir`
/// already holds a credential.
pub fn issue(ca_dir: &Path, name: &str, out_dir: &Path, admin: bool) -> io::Result<()> {
    check_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let read = |file: &str| {
        let p = ca_dir.join(file);
        std::fs::read_to_string(&p)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let ca_pem = read(CA_FILE)?;
    let ca_key =
        KeyPair::from_pem(&read(CA_KEY_FILE)?).map_err(|e| other("cannot read the CA key", e))?;
    // rcgen signs with a CA certificate object: rebuild it from the stored
    // one (same name and key, so the chain verifies against `ca.pem`).
    let ca_cert = CertificateParams::from_ca_cert_pem(&ca_pem)
        .and_then(|p| p.self_signed(&ca_key))
        .map_err(|e| other("cannot read the CA certificate", e))?;

    let key = KeyPair::generate().map_err(|e| other("cannot make a key", e))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let uri = |s: String| {
        s.try_into()
            .map(SanType::URI)
            .map_err(|e| other("bad subject alternative name", e))
    };
    let dns = TLS_SERVER_NAME
        .try_into()
        .map(SanType::DnsName)
        .map_err(|e| other("bad subject alternative name", e))?;
    params.subject_alt_names = vec![dns, uri(format!("{NODE_URI_PREFIX}{name}"))?];
    if admin {
        params.subject_alt_names.push(uri(ADMIN_URI.to_owned())?);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Every node is both a TLS server (it accepts) and a client (it dials).
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    validity(&mut params, NODE_DAYS);
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .map_err(|e| other("cannot sign the node certificate", e))?;
    std::fs::create_dir_all(out_dir)?;
    write_new(&out_dir.join(KEY_FILE), &key.serialize_pem(), true)?;
    write_new(&out_dir.join(CERT_FILE), &cert.pem(), false)?;
    write_new(&out_dir.join(CA_FILE), &ca_pem, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{CertIdentity, TlsCredentials};

    #[test]
    fn issued_credentials_name_their_node_and_role() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        init_ca(&ca).unwrap();
        assert!(init_ca(&ca).is_err(), "a CA is never overwritten");
        issue(&ca, "dbserver", &dir.path().join("db"), false).unwrap();
        issue(&ca, "ops", &dir.path().join("ops"), true).unwrap();
        let db = TlsCredentials::from_dir(dir.path().join("db")).unwrap();
        assert_eq!(
            db.identity(),
            &CertIdentity {
                name: "dbserver".into(),
                admin: false
            }
        );
        let ops = TlsCredentials::from_dir(dir.path().join("ops")).unwrap();
        assert!(ops.identity().admin);
        assert!(issue(&ca, "bad name", &dir.path().join("x"), false).is_err());
        assert!(issue(&ca, "dbserver", &dir.path().join("db"), false).is_err());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("db").join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
