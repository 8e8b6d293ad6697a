//! Shard threads: one per core (or `--shards`), pinned, each running its own monoio runtime
//! with its own SO_REUSEPORT sockets. The control thread talks to a shard only through its
//! command channel and the published snapshot.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_channel::{mpsc, oneshot};

use crate::dns::pipeline::ListenerKey;
use crate::net::conns::Conns;
use crate::net::ctx::{ShardCtx, Shared};
use crate::telemetry::stats::ShardStatsRef;

/// Which io driver the shards run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// io_uring.
    IoUring,
    /// epoll (monoio's legacy driver).
    Legacy,
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::IoUring => "io-uring",
            Driver::Legacy => "legacy",
        })
    }
}

/// The driver `auto` picks here: io_uring when the kernel allows it and offers the
/// operations monoio uses, else the legacy driver.
pub fn detect() -> Driver {
    if monoio::utils::detect_uring() {
        Driver::IoUring
    } else {
        Driver::Legacy
    }
}

/// A socket made by the control thread for one shard.
pub enum Socket {
    /// UDP.
    Udp(std::net::UdpSocket),
    /// TCP listener.
    Tcp(std::net::TcpListener),
}

/// A message to a shard.
pub enum Command {
    /// Start serving these sockets.
    Listen(Vec<(ListenerKey, Socket)>),
    /// Stop serving these listeners (open TCP connections finish on their own).
    Close(Vec<ListenerKey>),
    /// Reply with the challenge generation this shard now sees (an acknowledgement that
    /// values published before the command are being served).
    Sync(oneshot::Sender<u64>),
    /// Stop every listener, give open connections `grace` to finish, then end the thread.
    Shutdown {
        /// How long open connections may take.
        grace: Duration,
    },
}

/// The control side's handle on one shard.
pub struct ShardHandle {
    /// Shard number.
    pub id: usize,
    commands: mpsc::UnboundedSender<Command>,
    thread: std::thread::JoinHandle<()>,
}

impl ShardHandle {
    /// Sends a command; false if the shard has ended.
    pub fn send(&self, cmd: Command) -> bool {
        self.commands.unbounded_send(cmd).is_ok()
    }

    /// A sender of commands to this shard (for tasks that outlive a borrow of the handle).
    pub fn sender(&self) -> mpsc::UnboundedSender<Command> {
        self.commands.clone()
    }

    /// Waits for the thread to end.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!(shard = self.id, "shard thread panicked");
        }
    }
}

/// Starts `count` shards on `driver`, pinned to cores round-robin when `pin` is set, and
/// waits until each has its runtime; fails if any shard cannot build one (io_uring can be
/// detected yet refused later, for example by RLIMIT_MEMLOCK).
pub fn launch(count: usize, driver: Driver, pin: bool, shared: Arc<Shared>) -> std::io::Result<Vec<ShardHandle>> {
    let cores = if pin {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut handles = Vec::with_capacity(count);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    for id in 0..count {
        let (tx, rx) = mpsc::unbounded();
        let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
        let shared = shared.clone();
        let started = started_tx.clone();
        let thread = std::thread::Builder::new().name(format!("shard-{id}")).spawn(move || {
            if let Some(core) = core {
                if !core_affinity::set_for_current(core) {
                    tracing::warn!(shard = id, core = core.id, "could not pin shard to its core");
                }
            }
            run(id, driver, shared, rx, started);
        })?;
        handles.push(ShardHandle {
            id,
            commands: tx,
            thread,
        });
    }
    drop(started_tx);
    for _ in 0..count {
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("a shard could not start its {driver} runtime: {e}"),
                ));
            }
            Err(_) => {
                return Err(std::io::Error::other("a shard thread ended before starting"));
            }
        }
    }
    Ok(handles)
}

type Started = std::sync::mpsc::Sender<std::io::Result<()>>;

fn run(id: usize, driver: Driver, shared: Arc<Shared>, rx: mpsc::UnboundedReceiver<Command>, started: Started) {
    let span = tracing::info_span!("shard", id);
    let _enter = span.enter();
    match driver {
        Driver::IoUring => drive(
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().enable_timer(),
            id,
            shared,
            rx,
            started,
        ),
        Driver::Legacy => drive(
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer(),
            id,
            shared,
            rx,
            started,
        ),
    }
}

/// Builds the runtime, reports whether that worked, and runs the shard on it.
fn drive<D>(
    builder: monoio::RuntimeBuilder<D>,
    id: usize,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Command>,
    started: Started,
) where
    D: monoio::Buildable + monoio::Driver,
{
    match monoio::Buildable::build(builder) {
        Ok(mut rt) => {
            let _ = started.send(Ok(()));
            rt.block_on(shard_main(id, shared, rx));
        }
        Err(e) => {
            let _ = started.send(Err(e));
        }
    }
}

async fn shard_main(id: usize, shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Command>) {
    use futures_util_lite::next;
    let stats = ShardStatsRef::new(shared.stats.clone(), id);
    let ctx = Rc::new(ShardCtx {
        id,
        conns: Rc::new(Conns::new(shared.conn_limits, stats.clone())),
        shared,
        querylog: RefCell::new(Default::default()),
        forward: Rc::new(crate::forward::ShardForward::new(stats)),
        zone_refusals: RefCell::default(),
        limiter: Default::default(),
    });
    let mut stops: HashMap<ListenerKey, Vec<oneshot::Sender<()>>> = HashMap::new();
    while let Some(cmd) = next(&mut rx).await {
        match cmd {
            Command::Listen(sockets) => {
                for (key, sock) in sockets {
                    let (tx, stop) = oneshot::channel();
                    let started = match sock {
                        Socket::Udp(s) => monoio::net::udp::UdpSocket::from_std(s).map(|s| {
                            drop(monoio::spawn(crate::net::udp::serve(
                                Rc::new(s),
                                key,
                                ctx.clone(),
                                stop,
                            )))
                        }),
                        Socket::Tcp(l) => monoio::net::TcpListener::from_std(l)
                            .map(|l| drop(monoio::spawn(crate::net::tcp::serve(l, key, ctx.clone(), stop)))),
                    };
                    match started {
                        Ok(()) => stops.entry(key).or_default().push(tx),
                        Err(e) => {
                            tracing::error!(listener = %key, error = %e, "cannot serve socket")
                        }
                    }
                }
                fault::panic_if_asked(id);
            }
            Command::Close(keys) => {
                for k in keys {
                    for tx in stops.remove(&k).unwrap_or_default() {
                        let _ = tx.send(());
                    }
                }
            }
            Command::Sync(reply) => {
                let _ = reply.send(ctx.shared.challenges.load().generation);
            }
            Command::Shutdown { grace } => {
                for (_, txs) in stops.drain() {
                    for tx in txs {
                        let _ = tx.send(());
                    }
                }
                let deadline = std::time::Instant::now() + grace;
                while ctx.conns.open() > 0 && std::time::Instant::now() < deadline {
                    monoio::time::sleep(Duration::from_millis(20)).await;
                }
                break;
            }
        }
    }
}

/// Makes a panic on any thread end the whole process at once, after the default hook has
/// written the panic (thread name, place, message) to stderr. A shard whose thread died
/// would leave its sockets open in the kernel's SO_REUSEPORT group, so the kernel would go
/// on handing it queries that nobody answers; a process that exits is restarted by its
/// supervisor instead. Exit status 101, as a panicking Rust program's.
pub fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!("ringdns: fatal: a thread panicked; exiting so that a supervisor restarts the server");
        std::process::exit(101);
    }));
}

/// Faults injected on purpose, in debug builds only, for the tests that show what a fault
/// does to the process.
mod fault {
    /// Panics shard `id` when `RINGDNS_FAULT_PANIC_SHARD` names it (debug builds).
    pub fn panic_if_asked(id: usize) {
        #[cfg(debug_assertions)]
        if std::env::var("RINGDNS_FAULT_PANIC_SHARD").is_ok_and(|v| v == id.to_string()) {
            panic!("fault injected: RINGDNS_FAULT_PANIC_SHARD={id}");
        }
        #[cfg(not(debug_assertions))]
        let _ = id;
    }
}

/// Minimal stream helpers, to avoid pulling in all of futures-util.
mod futures_util_lite {
    use std::future::poll_fn;
    use std::pin::Pin;

    use futures_core::Stream;

    /// The next item of a stream.
    pub async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
    }
}
