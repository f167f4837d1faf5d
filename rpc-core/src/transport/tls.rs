//! Mutual TLS over any byte stream (rustls through tokio-rustls): the
//! handshake on each side, the identity the peer's certificate carries, and
//! one-line explanations of the ways a handshake is refused.

use crate::credentials::{CertIdentity, TLS_SERVER_NAME, TlsCredentials, identity_of};
use crate::error::RpcError;
use rustls::pki_types::ServerName;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

/// First byte of a TLS handshake record; a plaintext hello starts with its
/// length prefix, whose first byte is 0 for any hello under 16 MiB.
pub(crate) const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// A node's TLS configuration, both sides.
pub(crate) struct Tls {
    connector: TlsConnector,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// The configuration of `creds` (checked when they were loaded).
    pub(crate) fn new(creds: &TlsCredentials) -> Result<Tls, String> {
        Ok(Tls {
            connector: TlsConnector::from(creds.client_config()?),
            acceptor: TlsAcceptor::from(creds.server_config()?),
        })
    }

    /// Runs the dialing side of the TLS handshake over `io`.
    ///
    /// # Errors
    /// [`RpcError::Protocol`] naming the cause (another CA, a plaintext
    /// peer, a refused certificate).
    pub(crate) async fn connect<IO>(
        &self,
        io: IO,
    ) -> Result<(client::TlsStream<IO>, CertIdentity), RpcError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(TLS_SERVER_NAME)
            .map_err(|e| RpcError::protocol(format!("bad TLS server name: {e}")))?;
        let stream = self
            .connector
            .connect(name, io)
            .await
            .map_err(|e| refused(&e))?;
        let id = peer_identity(stream.get_ref().1.peer_certificates())?;
        Ok((stream, id))
    }

    /// Runs the accepting side of the TLS handshake over `io`.
    ///
    /// # Errors
    /// As [`Tls::connect`].
    pub(crate) async fn accept<IO>(
        &self,
        io: IO,
    ) -> Result<(server::TlsStream<IO>, CertIdentity), RpcError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = self.acceptor.accept(io).await.map_err(|e| refused(&e))?;
        let id = peer_identity(stream.get_ref().1.peer_certificates())?;
        Ok((stream, id))
    }
}

/// The identity in the peer's (verified) end-entity certificate.
fn peer_identity(
    certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
) -> Result<CertIdentity, RpcError> {
    let cert = certs
        .and_then(<[_]>::first)
        .ok_or_else(|| RpcError::protocol("TLS refused: the peer presented no certificate"))?;
    identity_of(cert).map_err(|e| RpcError::protocol(format!("TLS refused: {e}")))
}

/// A failed TLS handshake as one line naming the cause.
fn refused(e: &io::Error) -> RpcError {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let cause = match e.get_ref().and_then(|r| r.downcast_ref::<E>()) {
        Some(E::InvalidCertificate(C::UnknownIssuer | C::BadSignature)) => {
            "the peer's certificate is not from this cluster's CA".to_owned()
        }
        Some(E::InvalidCertificate(C::Expired | C::ExpiredContext { .. })) => {
            "the peer's certificate has expired".to_owned()
        }
        Some(E::InvalidCertificate(c)) => format!("the peer's certificate is not valid: {c:?}"),
        Some(E::AlertReceived(
            A::UnknownCA | A::BadCertificate | A::CertificateUnknown | A::DecryptError,
        )) => "the peer refused this node's certificate (not from its cluster's CA?)".to_owned(),
        Some(E::AlertReceived(A::CertificateRequired)) => {
            "the peer requires a certificate from its cluster's CA".to_owned()
        }
        Some(E::NoCertificatesPresented) => "the peer presented no certificate".to_owned(),
        Some(E::InvalidMessage(_)) => {
            "the peer does not speak TLS (is it running without --tls?)".to_owned()
        }
        Some(other) => other.to_string(),
        None if matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ) =>
        {
            "the peer closed the connection during the TLS handshake (does it speak TLS?)"
                .to_owned()
        }
        None => e.to_string(),
    };
    RpcError::protocol(format!("TLS refused: {cause}"))
}
