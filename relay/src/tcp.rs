//! Accepted TCP connections that end without a reset.
//!
//! A socket closed while bytes it has not read sit in its receive buffer is reset (RST) instead
//! of ended (FIN), and the reset destroys whatever is still on its way to the peer: a WebSocket
//! client refused while it was still sending would see 1006 instead of the relay's close code
//! and error frame. The WebSocket layer completes its closing handshake where it can
//! (`ws::closing`); where it cannot (after a frame over the transport's limit, no more frames
//! can be read), [`GracefulClose`] does it at the TCP level: dropped, it sends FIN at once, then
//! reads and discards what the peer still sends until the peer closes too, for at most
//! [`DRAIN_TIMEOUT`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// How long a closed connection is drained at most.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// A TCP stream that drains itself when dropped (see the module doc).
#[derive(Debug)]
pub struct GracefulClose {
    /// Always `Some` until dropped.
    stream: Option<TcpStream>,
}

impl GracefulClose {
    pub fn new(stream: TcpStream) -> Self {
        GracefulClose {
            stream: Some(stream),
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.stream
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for GracefulClose {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for GracefulClose {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }
}

impl Drop for GracefulClose {
    fn drop(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                // FIN first: the peer learns at once that nothing more comes.
                let _ = stream.shutdown().await;
                let mut scratch = [0u8; 4096];
                while matches!(stream.read(&mut scratch).await, Ok(n) if n > 0) {}
            })
            .await;
        });
    }
}
