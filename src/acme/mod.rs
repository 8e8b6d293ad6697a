//! The ACME manager (RFC 8555) on the control thread: one task per certificate, DNS-01
//! challenges answered by our own shards through the challenge overlay, storage shared
//! between instances, renewal by ARI (RFC 9773) or lifetime ratio, and certificates handed to
//! the TLS listeners by an event the control loop turns into a resolver swap.

mod board;
pub mod cert;
pub mod http;
mod peers;
mod remote;
pub mod schedule;
mod unit;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures_channel::mpsc as fmpsc;
use rustls::sign::CertifiedKey;
use tokio::sync::mpsc;

pub use board::Board;

use crate::config::{AcmeConfig, Config, TlsConfig};
use crate::net::ctx::Shared;
use crate::shard::Command;
use crate::storage::{StorageError, Store, default_root};

/// Why an ACME step failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// Configuration or local setup.
    #[error("{0}")]
    Setup(String),
    /// Certificate storage.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The ACME protocol or the CA.
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    /// A challenge or order that went invalid.
    #[error("order invalid: {0}")]
    Invalid(String),
    /// The storage lock.
    #[error("lock: {0}")]
    Lock(String),
    /// A certificate or key that is not usable.
    #[error("certificate: {0}")]
    Cert(String),
    /// Publishing challenge values to the shards.
    #[error("challenge publication: {0}")]
    Board(String),
}

impl AcmeError {
    /// The CA rejected the anti-replay nonce (RFC 8555 §6.5).
    pub fn is_bad_nonce(&self) -> bool {
        matches!(self, AcmeError::Acme(instant_acme::Error::Api(p)) if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:badNonce"))
    }
}

/// One certificate to keep: its names, its ACME settings and where it is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitSpec {
    /// Identity (the storage folder).
    pub id: String,
    /// Names on the certificate.
    pub names: Vec<String>,
    /// The `tls acme` settings.
    pub cfg: AcmeConfig,
    /// Storage root.
    pub root: PathBuf,
    /// This certificate's folder.
    pub dir: PathBuf,
}

/// The certificate units a configuration needs, one per distinct (CA, names, storage).
pub fn units(cfg: &Config) -> Vec<UnitSpec> {
    let mut out: Vec<UnitSpec> = Vec::new();
    for b in &cfg.blocks {
        if let Some(TlsConfig::Acme(a)) = &b.tls {
            let u = unit_of(a);
            if !out.iter().any(|x| x.id == u.id) {
                out.push(u);
            }
        }
    }
    out
}

/// The unit of one `tls acme` configuration.
pub fn unit_of(a: &AcmeConfig) -> UnitSpec {
    let root = a.certpath.clone().unwrap_or_else(default_root);
    let store = Store::at(&root);
    let mut names = a.domains.clone();
    names.sort();
    names.dedup();
    let dir = store.unit_dir(&a.ca, &names);
    UnitSpec {
        id: dir.display().to_string(),
        names,
        cfg: a.clone(),
        root,
        dir,
    }
}

/// Certificates found valid in storage, by unit, so start-up serves them at once.
pub fn preload(units: &[UnitSpec]) -> HashMap<String, Arc<CertifiedKey>> {
    let mut out = HashMap::new();
    for u in units {
        let store = Store::at(&u.root);
        match store.load(&u.dir) {
            Ok(Some(s)) => match unit::usable(&s.chain_pem, &s.key_pem, &u.names) {
                Ok((key, info, _)) => {
                    tracing::info!(names = %u.names.join(","), serial = %info.serial, "using the stored certificate");
                    out.insert(u.id.clone(), key);
                }
                Err(e) => {
                    tracing::info!(names = %u.names.join(","), reason = %e, "stored certificate not usable; ordering one")
                }
            },
            Ok(None) => tracing::info!(names = %u.names.join(","), "no stored certificate; ordering one"),
            Err(e) => tracing::warn!(error = %e, "cannot read certificate storage"),
        }
    }
    out
}

/// What the certificate tasks tell the control loop.
#[derive(Debug)]
pub enum Event {
    /// A certificate to serve for a unit.
    Certificate {
        /// The unit.
        unit: String,
        /// The pair.
        key: Arc<CertifiedKey>,
    },
    /// An order ended (for the metrics).
    Order(crate::telemetry::metrics::OrderResult),
}

/// Runs one task per unit and restarts them as the configuration changes.
pub struct Manager {
    board: Arc<Board>,
    events: mpsc::UnboundedSender<Event>,
    tasks: HashMap<String, (UnitSpec, tokio::task::JoinHandle<()>)>,
    /// One account per CA folder, shared by its certificates.
    accounts: HashMap<PathBuf, unit::AccountSlot>,
}

impl Manager {
    /// A manager publishing challenges into `shared` via the shards' command channels.
    pub fn new(
        shared: Arc<Shared>,
        shards: Vec<fmpsc::UnboundedSender<Command>>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Manager {
            board: Arc::new(Board::new(shared, shards)),
            events,
            tasks: HashMap::new(),
            accounts: HashMap::new(),
        }
    }

    /// Makes the running tasks match `units` (on the control runtime).
    pub fn sync(&mut self, units: &[UnitSpec]) -> Result<(), AcmeError> {
        let mut next = HashMap::new();
        for u in units {
            match self.tasks.remove(&u.id) {
                Some((spec, handle)) if spec == *u => {
                    next.insert(u.id.clone(), (spec, handle));
                }
                old => {
                    if let Some((_, h)) = old {
                        h.abort();
                    }
                    let slot = self
                        .accounts
                        .entry(Store::at(&u.root).ca_dir(&u.cfg.ca))
                        .or_default()
                        .clone();
                    let task = unit::Task::new(u.clone(), self.board.clone(), self.events.clone(), slot)?;
                    let handle = tokio::spawn(task.run());
                    next.insert(u.id.clone(), (u.clone(), handle));
                }
            }
        }
        for (id, (_, h)) in self.tasks.drain() {
            self.board.clear(&id);
            h.abort();
        }
        self.tasks = next;
        Ok(())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        for (_, (_, h)) in self.tasks.drain() {
            h.abort();
        }
    }
}
