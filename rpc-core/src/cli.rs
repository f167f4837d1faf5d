//! The network flags every server binary shares (feature `cli`): what
//! address to advertise, TLS credentials, and the explicit opt-in to
//! plaintext on a network.

use crate::config::Config;
use crate::credentials::TlsCredentials;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// `--advertise`, `--tls`, `--insecure`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetArgs {
    /// Address (HOST:PORT) other hosts dial to reach this node, when it is
    /// not the listening one (NAT, or to pick one of several). Listening on
    /// 0.0.0.0 or [::] without it advertises a routable address of this host.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Directory of this node's TLS credentials (ca.pem, node.pem, node.key,
    /// as `client pki issue` writes them): every connection then runs
    /// mutual TLS against that CA, and plaintext peers are refused.
    #[arg(long, env = "DISTOBJ_TLS", value_name = "DIR")]
    pub tls: Option<PathBuf>,
    /// Listen in plaintext on a non-loopback address anyway: anyone on the
    /// network can then read the traffic and claim any node id.
    #[arg(long)]
    pub insecure: bool,
}

impl NetArgs {
    /// Sets `config`'s advertised address and TLS credentials for a node
    /// listening on `listen`.
    ///
    /// # Errors
    /// One line for the user: the credentials cannot be read, or `listen`
    /// is not a loopback address and neither `--tls` nor `--insecure` was
    /// given.
    pub fn apply(&self, config: &mut Config, listen: &str) -> Result<(), String> {
        config.advertise.clone_from(&self.advertise);
        self.apply_tls(config)?;
        if config.tls.is_none() && !self.insecure && !is_loopback(listen) {
            return Err(format!(
                "refusing to listen in plaintext on {listen}, a non-loopback address: give \
                 --tls DIR (see `client pki`) or, to accept that anyone on the network can \
                 read and impersonate, --insecure"
            ));
        }
        Ok(())
    }

    /// Sets only `config`'s TLS credentials (for a node that does not listen).
    ///
    /// # Errors
    /// When the credentials cannot be read.
    pub fn apply_tls(&self, config: &mut Config) -> Result<(), String> {
        if let Some(dir) = &self.tls {
            let creds = TlsCredentials::from_dir(dir)
                .map_err(|e| format!("cannot read TLS credentials in {}: {e}", dir.display()))?;
            config.tls = Some(Arc::new(creds));
        }
        Ok(())
    }
}

/// True for `HOST:PORT` whose host is a loopback address or `localhost`.
fn is_loopback(addr: &str) -> bool {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().is_loopback();
    }
    match addr.rsplit_once(':') {
        Some((host, _)) => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_refused_off_loopback_unless_insecure() {
        let mut c = Config::default();
        let plain = NetArgs::default();
        for ok in ["127.0.0.1:0", "[::1]:7000", "localhost:7000", "127.8.9.1:1"] {
            assert!(plain.apply(&mut c, ok).is_ok(), "{ok}");
        }
        for bad in [
            "0.0.0.0:7000",
            "[::]:7000",
            "10.0.0.1:7000",
            "db.example:7000",
        ] {
            let e = plain.apply(&mut c, bad).unwrap_err();
            assert!(e.contains("--insecure"), "{e}");
        }
        let insecure = NetArgs {
            insecure: true,
            ..NetArgs::default()
        };
        assert!(insecure.apply(&mut c, "0.0.0.0:7000").is_ok());
    }

    #[test]
    fn unreadable_credentials_are_one_line() {
        let mut c = Config::default();
        let args = NetArgs {
            tls: Some("/nonexistent/creds".into()),
            ..NetArgs::default()
        };
        let e = args.apply(&mut c, "0.0.0.0:1").unwrap_err();
        assert!(
            e.contains("cannot read TLS credentials") && !e.contains('\n'),
            "{e}"
        );
    }
}
