//! The TLS handshake of DoT and DoH connections: tokio-rustls over monoio's poll-io, with the
//! listener's current configuration, within a time limit. Without a configuration (no
//! certificate yet) the handshake fails: a TLS port never answers in plaintext. A failed
//! handshake sends its alert first (`no_application_protocol` for an ALPN we do not speak).

use std::net::SocketAddr;
use std::time::Instant;

use monoio::io::IntoPollIo;
use monoio::net::TcpStream;

use super::conns::{ConnGuard, Cut, Phase};
use super::ctx::ShardCtx;
use crate::dns::pipeline::ListenerKey;
use crate::stream::ServerTls;

/// Why a handshake gave no TLS stream.
#[derive(Debug)]
pub(crate) enum Refused {
    /// It did not finish within the limit.
    Timeout,
    /// The connection was evicted for a newcomer.
    Evicted,
    /// It failed, or the listener has no certificate yet.
    Failed,
}

/// Completes the server side of a handshake on `stream` within the limit of the connection's
/// handshake phase; the connection is idle after it.
pub(crate) async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    key: &ListenerKey,
    ctx: &ShardCtx,
    guard: &ConnGuard,
) -> Result<ServerTls, Refused> {
    let config = ctx.shared.snapshot.load().route(key).and_then(|r| r.tls().cloned());
    let config = config.ok_or(Refused::Failed)?;
    let poll = stream.into_poll_io().map_err(|_| Refused::Failed)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match guard.watch(acceptor.accept(poll)).await {
        Err(Cut::Timeout) => Err(Refused::Timeout),
        Err(Cut::Evicted) => Err(Refused::Evicted),
        Ok(Err(e)) => {
            tracing::trace!(%peer, error = %e, "TLS handshake failed");
            Err(Refused::Failed)
        }
        Ok(Ok(tls)) => {
            guard.set_phase(Phase::Idle(Instant::now()));
            Ok(tls)
        }
    }
}
