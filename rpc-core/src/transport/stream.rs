//! The seam between a connection and the byte stream under it.
//!
//! A connection runs over anything `AsyncRead + AsyncWrite + Send + Unpin`.
//! What differs between streams is kept here: how the stream is split into
//! the reader task's half and the write path's half, and how the write path
//! writes without waiting (its fast path: a caller writes its own frame with
//! no task hop). TCP splits natively and writes with `try_write`; any other
//! stream (TLS, a Unix socket, an in-memory duplex) is split through tokio's
//! lock and polled once with a no-op waker, which is the same "write what
//! fits now" for a stream that offers no `try_write`.

use parking_lot::Mutex;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

/// The read side of a connection's stream, owned by its reader task.
pub(crate) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;

/// The write side of a connection's stream, as the write path uses it: from
/// callers' threads without waiting, or from the writer task when the stream
/// is full. Every method takes `&self`: callers never hold a lock of the
/// connection across a write.
pub(crate) trait WriteHalf: Send + Sync + 'static {
    /// Writes what the stream takes now: `Ok(n)` with `n > 0`, or
    /// `WouldBlock` when it takes nothing.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Writes some of `buf`, registering `cx` to be woken when the stream
    /// takes bytes again.
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Pushes out what the stream buffered itself (TLS records written
    /// into its session but not yet onto the socket).
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// [`WriteHalf::poll_flush`] without waiting: `Ok(true)` when nothing
    /// is left buffered, `Ok(false)` when the stream would block.
    fn try_flush(&self) -> io::Result<bool>;
}

/// Unsent bytes a socket holds before it refuses more (`TCP_NOTSENT_LOWAT`).
///
/// Without a bound the kernel takes megabytes of transfer chunks, and a
/// small frame written after them waits for all of them to leave: the
/// connection's own queue puts small frames first, but only for what the
/// kernel has not taken yet. Two chunks' worth keeps the link busy.
pub(crate) const SOCKET_UNSENT_LIMIT: u32 = 128 * 1024;

/// Sets what every connection's TCP socket needs, plaintext or under TLS:
/// `TCP_NODELAY` (frames are whole when written, so Nagle's delay would only
/// add latency) and [`SOCKET_UNSENT_LIMIT`]. Best effort: a socket that
/// refuses an option still works, only slower or with more queueing.
pub(crate) fn tune_tcp(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(SOCKET_UNSENT_LIMIT);
}

/// Splits a TCP stream natively (tuned by [`tune_tcp`] when it was made).
pub(crate) fn split_tcp(stream: TcpStream) -> (ReadHalf, Box<dyn WriteHalf>) {
    let (rd, wr) = stream.into_split();
    (Box::new(rd), Box::new(TcpWriter(wr)))
}

/// Splits any stream through tokio's lock.
pub(crate) fn split_any<S>(stream: S) -> (ReadHalf, Box<dyn WriteHalf>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    (Box::new(rd), Box::new(LockedWriter(Mutex::new(wr))))
}

/// The write half of a TCP stream.
struct TcpWriter(OwnedWriteHalf);

impl WriteHalf for TcpWriter {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.0.as_ref().poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn try_flush(&self) -> io::Result<bool> {
        Ok(true)
    }
}

/// The write half of any other stream. The lock is held for one poll only
/// (no await): a parking_lot mutex.
struct LockedWriter<S>(Mutex<tokio::io::WriteHalf<S>>);

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> WriteHalf for LockedWriter<S> {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_write(&mut cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut w = self.0.lock();
        Pin::new(&mut *w).poll_write(cx, buf)
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut w = self.0.lock();
        Pin::new(&mut *w).poll_flush(cx)
    }

    fn try_flush(&self) -> io::Result<bool> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_full_duplex_would_block_and_drains_when_read() {
        let (a, mut b) = tokio::io::duplex(8);
        let (_rd, wr) = split_any(a);
        assert_eq!(wr.try_write(b"0123456789").unwrap(), 8);
        let e = wr.try_write(b"89").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let mut got = [0u8; 8];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"01234567");
        assert_eq!(wr.try_write(b"89").unwrap(), 2);
        assert!(wr.try_flush().unwrap());
    }
}
