//! The benchmarks' `--tls`: a throwaway cluster CA in a temporary directory,
//! one credential for the server processes and one for the measuring client,
//! so that a run can time the same workload in plaintext and over mutual TLS.

use crate::BoxErr;
use rpc_core::{Config, TlsCredentials};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A CA and two credentials it issued, removed with the value.
#[derive(Debug)]
pub struct BenchPki {
    dir: tempfile::TempDir,
}

impl BenchPki {
    /// Makes the CA and issues `bench-server` and `bench-client`.
    pub fn new() -> Result<BenchPki, BoxErr> {
        let dir = tempfile::Builder::new().prefix("bench-pki-").tempdir()?;
        let ca = dir.path().join("ca");
        rpc_core::pki::init_ca(&ca)?;
        for name in ["bench-server", "bench-client"] {
            rpc_core::pki::issue(&ca, name, &dir.path().join(name), false)?;
        }
        Ok(BenchPki { dir })
    }

    /// Credential directory to hand a server child process (`--tls-dir`).
    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("bench-server")
    }

    /// `base` running mutual TLS with the client credential.
    pub fn client_config(&self, base: Config) -> Result<Config, BoxErr> {
        with_tls(base, Some(&self.dir.path().join("bench-client")))
    }
}

/// `base` running mutual TLS with the credential in `dir` (as `pki issue`
/// wrote it); `base` itself without a `dir`.
pub fn with_tls(base: Config, dir: Option<&Path>) -> Result<Config, BoxErr> {
    let Some(dir) = dir else {
        return Ok(base);
    };
    let creds = TlsCredentials::from_dir(dir)
        .map_err(|e| format!("cannot read the credential in {}: {e}", dir.display()))?;
    Ok(Config {
        tls: Some(Arc::new(creds)),
        ..base
    })
}
