//! The flags every binary shares (feature `cli`): the network ones (what
//! address to advertise, TLS credentials, the explicit opt-in to plaintext
//! on a network) and the limits, shown under "Limits" in `--help`.

mod exporter;

pub use exporter::{ExtraGauges, serve_metrics};

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
    /// `0.0.0.0` or `[::]` without it advertises a routable address of this host.
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
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (calls by
    /// class, method and outcome with latency histograms, connections,
    /// leases, exports, transfers, bytes, data items).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<String>,
}

impl NetArgs {
    /// Starts serving `--metrics` for `node`, if given; returns the address.
    ///
    /// # Errors
    /// One line for the user (see [`serve_metrics`]).
    pub async fn start_metrics(
        &self,
        node: &crate::Node,
        extra: ExtraGauges,
    ) -> Result<Option<SocketAddr>, String> {
        match &self.metrics {
            Some(addr) => serve_metrics(addr, node.clone(), extra).await.map(Some),
            None => Ok(None),
        }
    }

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

/// A size in bytes, written as a number with an optional binary suffix
/// (`K`, `M`, `G`, `T`, optionally followed by `iB` or `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [(&str, u64); 4] = [
            ("T", 1 << 40),
            ("G", 1 << 30),
            ("M", 1 << 20),
            ("K", 1 << 10),
        ];
        for (suffix, unit) in UNITS {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size (a number, optionally with K, M, G or T)"))?;
        let shift = match unit
            .trim()
            .to_ascii_uppercase()
            .trim_end_matches("IB")
            .trim_end_matches('B')
        {
            "" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            other => return Err(format!("unknown size unit `{other}` in `{s}`")),
        };
        n.checked_mul(1u64 << shift)
            .map(Size)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

/// What peers can make this node hold, with the defaults of [`Config`]; each
/// refusal is a typed error to the peer (`Overloaded`, `TooLarge`,
/// `QuotaExceeded`) while the node goes on serving others. Raise one to
/// accept more of a resource from well-behaved peers.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Largest frame, in bytes (values above 64 KiB travel in chunks anyway).
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_FRAME_LEN as u64))]
    pub max_frame_len: Size,
    /// Largest hello an unauthenticated peer may send.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_HELLO_LEN as u64))]
    pub max_hello_len: Size,
    /// Time a new connection has to finish its handshake, in ms.
    #[arg(long, value_name = "MS", default_value_t = crate::config::HANDSHAKE_TIMEOUT.as_millis() as u64)]
    pub handshake_timeout_ms: u64,
    /// Handshakes in progress at once, all peers (the oldest is dropped for a new one).
    #[arg(long, value_name = "N", default_value_t = crate::config::MAX_HANDSHAKES)]
    pub max_handshakes: usize,
    /// Handshakes in progress at once from one remote address (the oldest is dropped for a new one).
    #[arg(long, value_name = "N", default_value_t = crate::config::MAX_HANDSHAKES_PER_ADDRESS)]
    pub max_handshakes_per_address: usize,
    /// Accepted connections, all peers.
    #[arg(long, value_name = "N", default_value_t = crate::config::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Accepted connections from one remote address.
    #[arg(long, value_name = "N", default_value_t = crate::config::MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: usize,
    /// Calls one connection may have running at once.
    #[arg(long, value_name = "N", default_value_t = crate::config::MAX_INFLIGHT_PER_CONNECTION)]
    pub max_inflight: usize,
    /// Bytes waiting for a peer that does not read before its requests are no longer read.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_QUEUED_BYTES as u64))]
    pub max_queued_bytes: Size,
    /// Largest value pulled into memory (larger ones need a file-backed Blob).
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_LARGE_VALUE))]
    pub max_large_value: Size,
    /// Bytes of in-memory values kept for one peer to pull.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_OFFERED_BYTES_PER_PEER))]
    pub max_offered_bytes_per_peer: Size,
    /// Bytes of in-memory values kept for all peers to pull.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_OFFERED_BYTES))]
    pub max_offered_bytes: Size,
    /// Transfers open with one peer (each holds memory or a file descriptor).
    #[arg(long, value_name = "N", default_value_t = crate::config::MAX_TRANSFERS_PER_PEER)]
    pub max_transfers_per_peer: usize,
    /// Transfers open with all peers.
    #[arg(long, value_name = "N", default_value_t = crate::config::MAX_TRANSFERS)]
    pub max_transfers: usize,
    /// Bytes being pulled into memory from one peer at once.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_PULL_MEMORY_PER_PEER))]
    pub max_pull_memory_per_peer: Size,
    /// Bytes being pulled into memory from all peers at once.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_PULL_MEMORY))]
    pub max_pull_memory: Size,
    /// Bytes being pulled to disk from one peer at once.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MAX_PULL_DISK_PER_PEER))]
    pub max_pull_disk_per_peer: Size,
    /// Free space kept on a disk pulled values are written to.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::config::MIN_FREE_DISK))]
    pub min_free_disk: Size,
    /// Time a transfer may go without progress before it is dropped, in ms.
    #[arg(long, value_name = "MS", default_value_t = crate::config::TRANSFER_TIMEOUT.as_millis() as u64)]
    pub transfer_timeout_ms: u64,
    /// Idle time after which a connection pings its peer, in ms.
    #[arg(long, value_name = "MS", default_value_t = crate::config::KEEPALIVE_INTERVAL.as_millis() as u64)]
    pub keepalive_interval_ms: u64,
    /// Time without a frame from the peer after which a connection is
    /// declared dead and its calls fail, in ms.
    #[arg(long, value_name = "MS", default_value_t = crate::config::KEEPALIVE_TIMEOUT.as_millis() as u64)]
    pub keepalive_timeout_ms: u64,
}

/// A `Config` byte count that a [`Size`] flag sets.
trait FromSize {
    fn from_size(s: Size) -> Self;
    fn size(&self) -> Size;
}

impl FromSize for u64 {
    fn from_size(s: Size) -> u64 {
        s.0
    }
    fn size(&self) -> Size {
        Size(*self)
    }
}

impl FromSize for usize {
    fn from_size(s: Size) -> usize {
        usize::try_from(s.0).unwrap_or(usize::MAX)
    }
    fn size(&self) -> Size {
        Size(u64::try_from(*self).unwrap_or(u64::MAX))
    }
}

/// Every limit flag once, as `flag: kind => Config field` (kind: `bytes`, a
/// [`Size`]; `count`; `millis`, a `Duration` in ms), making both directions
/// from that one list: [`LimitArgs::apply`] (flags into a `Config`) and
/// [`LimitArgs::with_defaults`] (a `Config` into the flags' defaults).
macro_rules! limit_flags {
    (@show bytes $v:expr) => { FromSize::size(&$v).to_string() };
    (@show count $v:expr) => { $v.to_string() };
    (@show millis $v:expr) => { $v.as_millis().to_string() };
    (@set bytes $v:expr) => { FromSize::from_size($v) };
    (@set count $v:expr) => { $v };
    (@set millis $v:expr) => { std::time::Duration::from_millis($v) };
    ($($flag:ident: $kind:ident => $field:ident,)*) => {
        impl LimitArgs {
            /// `cmd` (a binary's command, these flags flattened into it) with
            /// the flags' defaults taken from `config` instead of
            /// [`Config::default`]: a binary whose peers have no reason to
            /// send large values starts from smaller budgets, and `--help`
            /// shows the ones it really uses.
            pub fn with_defaults(cmd: clap::Command, config: &Config) -> clap::Command {
                let mut cmd = cmd;
                $(
                    let value = limit_flags!(@show $kind config.$field);
                    cmd = cmd.mut_arg(stringify!($flag), |a| a.default_value(value));
                )*
                cmd
            }

            /// Sets the limits of `config`.
            pub fn apply(&self, config: &mut Config) {
                $( config.$field = limit_flags!(@set $kind self.$flag); )*
            }
        }
    };
}

limit_flags! {
    max_frame_len: bytes => max_frame_len,
    max_hello_len: bytes => max_hello_len,
    handshake_timeout_ms: millis => handshake_timeout,
    max_handshakes: count => max_handshakes,
    max_handshakes_per_address: count => max_handshakes_per_address,
    max_connections: count => max_connections,
    max_connections_per_address: count => max_connections_per_address,
    max_inflight: count => max_inflight_per_connection,
    max_queued_bytes: bytes => max_queued_bytes,
    max_large_value: bytes => max_large_value,
    max_offered_bytes_per_peer: bytes => max_offered_bytes_per_peer,
    max_offered_bytes: bytes => max_offered_bytes,
    max_transfers_per_peer: count => max_transfers_per_peer,
    max_transfers: count => max_transfers,
    max_pull_memory_per_peer: bytes => max_pull_memory_per_peer,
    max_pull_memory: bytes => max_pull_memory,
    max_pull_disk_per_peer: bytes => max_pull_disk_per_peer,
    min_free_disk: bytes => min_free_disk,
    transfer_timeout_ms: millis => transfer_timeout,
    keepalive_interval_ms: millis => keepalive_interval,
    keepalive_timeout_ms: millis => keepalive_timeout,
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

    /// A binary's command with the limit flags in it.
    #[derive(Debug, clap::Parser)]
    struct WithLimits {
        #[command(flatten)]
        limits: LimitArgs,
    }

    #[test]
    fn a_binary_can_start_its_limits_from_its_own_defaults() {
        use clap::{CommandFactory, FromArgMatches};
        let mine = Config {
            max_large_value: 16 << 20,
            max_pull_memory_per_peer: 3 << 20,
            max_transfers: 7,
            transfer_timeout: std::time::Duration::from_millis(1234),
            ..Config::default()
        };
        let cmd = LimitArgs::with_defaults(WithLimits::command(), &mine);
        let parse = |argv: &[&str]| {
            let m = cmd.clone().try_get_matches_from(argv).unwrap();
            let mut c = Config::default();
            WithLimits::from_arg_matches(&m)
                .unwrap()
                .limits
                .apply(&mut c);
            c
        };
        let c = parse(&["bin"]);
        assert_eq!(c.max_large_value, 16 << 20);
        assert_eq!(c.max_pull_memory_per_peer, 3 << 20);
        assert_eq!(c.max_transfers, 7);
        assert_eq!(c.transfer_timeout, std::time::Duration::from_millis(1234));
        assert_eq!(c.max_connections, Config::default().max_connections);
        // A flag given still wins over the binary's default.
        let c = parse(&["bin", "--max-transfers", "9"]);
        assert_eq!(c.max_transfers, 9);
        let help = cmd.clone().render_help().to_string();
        assert!(help.contains("[default: 3M]"), "{help}");
    }

    #[test]
    fn sizes_parse_with_binary_suffixes_and_print_back() {
        for (text, n) in [
            ("0", 0),
            ("4096", 4096),
            ("4K", 4096),
            ("16MiB", 16 << 20),
            ("2g", 2 << 30),
            ("1TB", 1 << 40),
        ] {
            let s: Size = text.parse().unwrap();
            assert_eq!(s.0, n, "{text}");
            assert_eq!(s.to_string().parse::<Size>().unwrap(), s);
        }
        assert_eq!(Size(16 << 20).to_string(), "16M");
        assert_eq!(Size(1000).to_string(), "1000");
        for bad in ["", "x", "5X", "99999999999999999999", "16777216T"] {
            assert!(bad.parse::<Size>().is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_default_to_the_configs_defaults() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            limits: LimitArgs,
        }
        let cli = Cli::parse_from(["x"]);
        let mut c = Config::default();
        cli.limits.apply(&mut c);
        let d = Config::default();
        assert_eq!(
            (
                c.max_frame_len,
                c.max_connections,
                c.min_free_disk,
                c.max_queued_bytes,
                c.transfer_timeout
            ),
            (
                d.max_frame_len,
                d.max_connections,
                d.min_free_disk,
                d.max_queued_bytes,
                d.transfer_timeout
            )
        );
        let cli = Cli::parse_from(["x", "--max-connections", "5", "--max-queued-bytes", "1M"]);
        cli.limits.apply(&mut c);
        assert_eq!((c.max_connections, c.max_queued_bytes), (5, 1 << 20));
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
