//! Logging setup, per-shard statistics and the `health`/`ready` endpoints.

pub mod metrics;
pub mod probes;
pub mod querylog;
pub mod stats;

use tracing_subscriber::EnvFilter;

/// Keeps the log writer thread alive; dropping it flushes what is queued.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Logs go to stderr through a writer thread, so a shard never blocks on a slow terminal or
/// pipe; when the queue is full lines are dropped (lossy), never waited for.
/// `RUST_LOG` overrides `default_level`.
pub fn init(default_level: &str) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    guard
}
