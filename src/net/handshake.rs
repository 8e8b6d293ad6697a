//! The TLS handshake of DoT and DoH connections: tokio-rustls over monoio's poll-io, with the
//! listener's current configuration, within a time limit. Without a configuration (no
//! certificate yet) the handshake fails: a TLS port never answers in plaintext. A failed
//! handshake sends its alert first (`no_application_protocol` for an ALPN we do not speak).

use std::net::SocketAddr;
use std::time::Duration;

use monoio::io::IntoPollIo;
use monoio::net::TcpStream;

use super::stream::ServerTls;
use crate::dns::pipeline::ListenerKey;
use crate::shard::ShardCtx;

/// Why a handshake gave no TLS stream.
#[derive(Debug)]
pub(crate) enum Refused {
    /// It did not finish within the limit.
    Timeout,
    /// It failed, or the listener has no certificate yet.
    Failed,
}

/// Completes the server side of a handshake on `stream` within `limit`.
pub(crate) async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    key: &ListenerKey,
    ctx: &ShardCtx,
    limit: Duration,
) -> Result<ServerTls, Refused> {
    let config = ctx.shared.snapshot.load().route(key).and_then(|r| r.tls().cloned());
    let config = config.ok_or(Refused::Failed)?;
    let poll = stream.into_poll_io().map_err(|_| Refused::Failed)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match monoio::time::timeout(limit, acceptor.accept(poll)).await {
        Err(_) => Err(Refused::Timeout),
        Ok(Err(e)) => {
            tracing::trace!(%peer, error = %e, "TLS handshake failed");
            Err(Refused::Failed)
        }
        Ok(Ok(tls)) => Ok(tls),
    }
}
