//! The address a node advertises in its hello and its capabilities: one
//! other hosts can dial, never `0.0.0.0` or `[::]` (which mean "this
//! machine" to whoever dials them).
//!
//! In order: the address configured with `advertise`; the listening address
//! when it is a specific one; for an unspecified listener, the source
//! address of the host's default route, or else (no default route, as on a
//! host with only a local network) the local address of the node's first
//! non-loopback connection.

use parking_lot::RwLock;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// What a node knows of its own address.
#[derive(Debug, Clone)]
enum Advert {
    /// Not listening: capabilities carry no address.
    None,
    /// Configured, or a specific listening address.
    Fixed(String),
    /// Listening on an unspecified address at `port`: `ip` is the best
    /// routable address found so far.
    Learned { port: u16, ip: Option<IpAddr> },
}

/// The address a node advertises; read on every export, written when the
/// node starts listening and when it learns a better address.
#[derive(Debug)]
pub(crate) struct Advertised(RwLock<Advert>);

impl Default for Advertised {
    fn default() -> Self {
        Advertised(RwLock::new(Advert::None))
    }
}

impl Advertised {
    /// The address to advertise now, if there is one.
    pub(crate) fn get(&self) -> Option<String> {
        match &*self.0.read() {
            Advert::None | Advert::Learned { ip: None, .. } => None,
            Advert::Fixed(a) => Some(a.clone()),
            Advert::Learned { port, ip: Some(ip) } => Some(SocketAddr::new(*ip, *port).to_string()),
        }
    }

    /// The node listens on `local`; `configured` is the address it was told
    /// to advertise. Returns what it advertises (or `None` until it learns
    /// one), and logs the choice.
    ///
    /// # Errors
    /// `InvalidInput` when `configured` is unspecified or not `HOST:PORT`.
    pub(crate) fn listen(
        &self,
        local: SocketAddr,
        configured: Option<&str>,
    ) -> io::Result<Option<String>> {
        let advert = match configured {
            Some(a) => {
                check_advertisable(a)?;
                Advert::Fixed(a.to_owned())
            }
            None if !local.ip().is_unspecified() => Advert::Fixed(local.to_string()),
            None => Advert::Learned {
                port: local.port(),
                ip: default_route_ip(local.is_ipv6()),
            },
        };
        *self.0.write() = advert;
        let chosen = self.get();
        match (&chosen, configured) {
            (Some(a), Some(_)) => {
                tracing::info!(listen = %local, advertise = %a, "advertising the configured address")
            }
            (Some(a), None) if local.ip().is_unspecified() => tracing::info!(
                listen = %local,
                advertise = %a,
                "listening on an unspecified address; advertising the default route's source address"
            ),
            (Some(_), None) => {}
            (None, _) => tracing::info!(
                listen = %local,
                "listening on an unspecified address without a default route; the address to advertise is learned from the first connection"
            ),
        }
        Ok(chosen)
    }

    /// A connection of this node has local address `local`: an unspecified
    /// listener without a routable address yet takes its ip (a non-loopback
    /// one replaces a loopback one).
    pub(crate) fn observe(&self, local: SocketAddr) {
        let better = |have: Option<IpAddr>| match have {
            None => true,
            Some(ip) => ip.is_loopback() && !local.ip().is_loopback(),
        };
        {
            let a = self.0.read();
            match &*a {
                Advert::Learned { ip, .. } if better(*ip) => {}
                _ => return,
            }
        }
        let mut a = self.0.write();
        if let Advert::Learned { port, ip } = &mut *a
            && better(*ip)
        {
            *ip = Some(local.ip());
            tracing::info!(
                advertise = %SocketAddr::new(local.ip(), *port),
                "advertising the local address of a connection"
            );
        }
    }
}

/// Fails unless `addr` is `HOST:PORT` with a host other dial (not
/// `0.0.0.0` or `[::]`).
fn check_advertisable(addr: &str) -> io::Result<()> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot advertise `{addr}`: {why}"),
        )
    };
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        if sa.ip().is_unspecified() {
            return Err(bad(
                "an unspecified address means \"this machine\" to whoever dials it",
            ));
        }
        if sa.port() == 0 {
            return Err(bad("port 0 cannot be dialed"));
        }
        return Ok(());
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(bad("expected HOST:PORT")),
    }
}

/// The source address the host would use on its default route (no packet
/// is sent: connecting a UDP socket only picks a route).
fn default_route_ip(v6: bool) -> Option<IpAddr> {
    // Documentation addresses (RFC 5737, RFC 3849): never on a real network.
    let (bind, probe): (SocketAddr, SocketAddr) = if v6 {
        (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
        )
    } else {
        (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            (Ipv4Addr::new(192, 0, 2, 1), 9).into(),
        )
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect(probe).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_listening_address_is_advertised_as_is() {
        let a = Advertised::default();
        assert_eq!(a.get(), None);
        let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            a.listen(local, None).unwrap().as_deref(),
            Some("127.0.0.1:4000")
        );
        // Connections change nothing.
        a.observe("10.1.2.3:5555".parse().unwrap());
        assert_eq!(a.get().as_deref(), Some("127.0.0.1:4000"));
    }

    #[test]
    fn the_configured_address_wins_and_must_be_dialable() {
        let a = Advertised::default();
        let local: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        let got = a.listen(local, Some("db.example:7001")).unwrap();
        assert_eq!(got.as_deref(), Some("db.example:7001"));
        for bad in [
            "0.0.0.0:7001",
            "[::]:7001",
            "10.0.0.1:0",
            "nohost",
            ":80",
            "h:x",
        ] {
            assert!(a.listen(local, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unspecified_listener_never_advertises_it() {
        for local in ["0.0.0.0:4000", "[::]:4000"] {
            let a = Advertised::default();
            let local: SocketAddr = local.parse().unwrap();
            if let Some(addr) = a.listen(local, None).unwrap() {
                let sa: SocketAddr = addr.parse().unwrap();
                assert!(!sa.ip().is_unspecified());
                assert_eq!(sa.port(), 4000);
            }
        }
    }

    #[test]
    fn a_learned_address_prefers_non_loopback() {
        let a = Advertised(RwLock::new(Advert::Learned {
            port: 4000,
            ip: None,
        }));
        assert_eq!(a.get(), None);
        a.observe("127.0.0.1:50000".parse().unwrap());
        assert_eq!(a.get().as_deref(), Some("127.0.0.1:4000"));
        a.observe("10.77.0.2:50001".parse().unwrap());
        assert_eq!(a.get().as_deref(), Some("10.77.0.2:4000"));
        a.observe("10.88.0.2:50002".parse().unwrap());
        assert_eq!(a.get().as_deref(), Some("10.77.0.2:4000"));
        let v6 = Advertised(RwLock::new(Advert::Learned {
            port: 4000,
            ip: None,
        }));
        v6.observe("[fd00::2]:50000".parse().unwrap());
        assert_eq!(v6.get().as_deref(), Some("[fd00::2]:4000"));
    }
}
