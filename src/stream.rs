//! The two halves of a TCP or TLS byte stream, used at the same time by a connection's reader
//! and its writer (server connections and pooled upstream connections alike).
//!
//! Plain TCP uses monoio's owned halves (io_uring reads and writes into buffers handed to the
//! kernel). TLS is tokio-rustls over monoio's poll-io, as for DoH: each half touches the
//! shared stream only inside one poll, never across an await, so a read or write cancelled by
//! a timeout leaves no state half-done and no buffer lent out. (monoio-rustls's split halves
//! lend one internal buffer to whichever operation runs; a write cancelled by the write
//! timeout left it lent, and the close_notify that followed panicked the shard, issue 10.)

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use monoio::net::tcp::stream_poll::TcpStreamPoll;
use tokio::io::{AsyncBufRead, AsyncWrite};

/// Spare room a read asks for when the buffer has none.
const READ_CHUNK: usize = 4096;

/// The length announced by a 2-byte prefix (RFC 1035 §4.2.2), once it is complete.
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 2).then(|| usize::from(u16::from_be_bytes([buf[0], buf[1]])))
}

/// The reading half.
pub(crate) trait StreamRead {
    /// Appends what the peer sent next to `buf` (into its spare capacity, growing it when it
    /// has none); `Ok(0)` at end of stream. A read cancelled on a plain TCP half loses the
    /// buffer: cancel only to end the connection.
    async fn read_some(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>);
}

/// The writing half.
pub(crate) trait StreamWrite {
    /// Writes all of `buf` (and, over TLS, the records it makes).
    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>);
    /// Ends our side: close_notify over TLS, then FIN.
    async fn shutdown(&mut self) -> io::Result<()>;
}

/// Splits a plain TCP stream.
pub(crate) fn tcp(stream: TcpStream) -> (OwnedReadHalf<TcpStream>, OwnedWriteHalf<TcpStream>) {
    stream.into_split()
}

impl StreamRead for OwnedReadHalf<TcpStream> {
    async fn read_some(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        if buf.capacity() == buf.len() {
            buf.reserve(READ_CHUNK);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let (r, b) = self.read(buf.slice_mut(len..cap)).await;
        (r, b.into_inner())
    }
}

impl StreamWrite for OwnedWriteHalf<TcpStream> {
    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let (r, b) = AsyncWriteRentExt::write_all(self, buf).await;
        (r.map(drop), b)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        AsyncWriteRent::shutdown(self).await
    }
}

/// One half of a TLS stream (server or client side) shared with the other half.
pub(crate) struct TlsHalf<S>(Rc<RefCell<S>>);

/// A server-side TLS stream over poll-io.
pub(crate) type ServerTls = tokio_rustls::server::TlsStream<TcpStreamPoll>;

/// Splits a TLS stream into a reading and a writing half.
pub(crate) fn tls<S>(stream: S) -> (TlsHalf<S>, TlsHalf<S>) {
    let shared = Rc::new(RefCell::new(stream));
    (TlsHalf(shared.clone()), TlsHalf(shared))
}

impl<S: AsyncBufRead + Unpin> StreamRead for TlsHalf<S> {
    async fn read_some(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let r = poll_fn(|cx| {
            let mut s = self.0.borrow_mut();
            let data = match Pin::new(&mut *s).poll_fill_buf(cx) {
                Poll::Ready(Ok(data)) => data,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            let n = data.len();
            buf.extend_from_slice(data);
            Pin::new(&mut *s).consume(n);
            Poll::Ready(Ok(n))
        })
        .await;
        (r, buf)
    }
}

impl<S: AsyncWrite + Unpin> StreamWrite for TlsHalf<S> {
    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut done = 0;
        let r = poll_fn(|cx| {
            let mut s = self.0.borrow_mut();
            while done < buf.len() {
                match Pin::new(&mut *s).poll_write(cx, &buf[done..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => done += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            // rustls may still hold records of what it took: push them out.
            Pin::new(&mut *s).poll_flush(cx)
        })
        .await;
        (r, buf)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| Pin::new(&mut *self.0.borrow_mut()).poll_shutdown(cx)).await
    }
}
