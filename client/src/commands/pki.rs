//! `pki init` and `pki issue`: the cluster CA and node credentials for
//! `--tls` (made by `rpc_core::pki`; no name server involved).

use crate::ClientError;
use crate::cli::PkiCommand;
use crate::output::Output;

/// Runs a `pki` subcommand.
///
/// # Errors
/// [`ClientError::Io`] when a directory cannot be written or read (an
/// existing CA or credential is never overwritten); [`ClientError::Input`]
/// for a name that cannot name a node.
pub fn run(command: PkiCommand) -> Result<Output, ClientError> {
    match command {
        PkiCommand::Init { ca_dir } => {
            rpc_core::pki::init_ca(&ca_dir).map_err(|source| ClientError::Io {
                what: "making the CA",
                source,
            })?;
            Ok(Output::CertificateAuthority { dir: ca_dir })
        }
        PkiCommand::Issue {
            ca_dir,
            name,
            out_dir,
            admin,
        } => {
            rpc_core::pki::issue(&ca_dir, &name, &out_dir, admin).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidInput {
                    ClientError::Input(e.to_string())
                } else {
                    ClientError::Io {
                        what: "issuing the credential",
                        source: e,
                    }
                }
            })?;
            Ok(Output::Credential {
                name,
                admin,
                dir: out_dir,
            })
        }
    }
}
