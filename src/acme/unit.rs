//! One certificate (a `tls acme` configuration): load it from storage, renew it on time,
//! order it with DNS-01 answered by our own shards, store it, and hand it to the TLS
//! listeners. Runs as a task on the control thread's Tokio runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use tokio::sync::mpsc;

use super::board::Board;
use super::cert::{self, CertInfo};
use super::http::{RetryAfter, Watched};
use super::peers::{MEMBER_HEARTBEAT, Peers, Posted};
use super::schedule::{self, Backoff};
use super::{AcmeError, Event, UnitSpec};
use crate::config::RenewPolicy;
use crate::storage::{Lock, Store, lock};
use crate::telemetry::metrics::OrderResult;
use crate::tls::certs::pair_from_pem;
use crate::zone::challenge::challenge_name;
use crate::zone::name::{NameKey, display};

/// How long to wait for another instance that holds the ordering lock.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(600);
/// How long an order may take from challenge to certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);
/// How often ARI is asked again when the CA gives no hint.
const ARI_REFRESH: Duration = Duration::from_secs(6 * 3600);
/// How long every instance sharing the storage gets to serve a new challenge.
const PEER_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Immediate restarts of an order after the CA rejected a nonce, before it counts as failed.
const MAX_BAD_NONCE_RESTARTS: u32 = 20;
/// How often an instance looks for a challenge posted by the one that orders.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// One ACME account per CA (and storage) for the whole process.
pub type AccountSlot = Arc<tokio::sync::Mutex<Option<Account>>>;

/// What is being served.
struct Current {
    version: u64,
    info: CertInfo,
    leaf: Vec<u8>,
}

/// The ARI state of the certificate being served.
enum Ari {
    /// Not asked yet (or the certificate changed).
    Unknown,
    /// The CA's directory has no renewalInfo: use the lifetime ratio.
    Unsupported,
    /// Renew at `at`; ask again at `refetch`.
    Window { at: SystemTime, refetch: SystemTime },
}

/// The task state of one certificate.
pub struct Task {
    spec: UnitSpec,
    board: Arc<Board>,
    events: mpsc::UnboundedSender<Event>,
    store: Store,
    retry_after: RetryAfter,
    /// Built on first use, so a CA root file that appears later is picked up.
    http: Option<Watched>,
    peers: Peers,
    /// The account of this CA, shared with every task of the process using it.
    account: AccountSlot,
    current: Option<Current>,
    backoff: Backoff,
    ari: Ari,
    holder: String,
    /// The CA refused `replaces` once: order renewals without it.
    no_replaces: bool,
}

impl Task {
    /// Prepares the task; fails if the storage folder cannot be made.
    pub fn new(
        spec: UnitSpec,
        board: Arc<Board>,
        events: mpsc::UnboundedSender<Event>,
        account: AccountSlot,
    ) -> Result<Task, AcmeError> {
        let store = Store::open(&spec.root)?;
        let holder = lock::holder_id();
        let peers = Peers::new(&spec.dir, &holder);
        Ok(Task {
            spec,
            board,
            events,
            store,
            retry_after: RetryAfter::default(),
            http: None,
            peers,
            account,
            current: None,
            backoff: Backoff::default(),
            ari: Ari::Unknown,
            holder,
            no_replaces: false,
        })
    }

    fn http(&mut self) -> Result<Watched, AcmeError> {
        if let Some(h) = &self.http {
            return Ok(h.clone());
        }
        let h = Watched::new(self.spec.cfg.cacert.as_deref(), self.retry_after.clone())?;
        self.http = Some(h.clone());
        Ok(h)
    }

    /// Runs forever (until the task is aborted on reload or shutdown), serving the challenges
    /// that any instance sharing the storage posts.
    pub async fn run(mut self) {
        let follower = follow(self.peers.clone(), self.board.clone(), self.spec.id.clone());
        tokio::select! {
            () = self.keep() => {}
            () = follower => {}
        }
    }

    async fn keep(&mut self) {
        let mut bad_nonces = 0;
        loop {
            self.pick_up_stored();
            let now = SystemTime::now();
            let due = self.due(now).await;
            let earliest = [Some(due), self.backoff.not_before(), self.retry_after.until()]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(now);
            if earliest <= now {
                match self.renew().await {
                    Ok(()) => {
                        self.backoff.succeed();
                        bad_nonces = 0;
                    }
                    // RFC 8555 §6.5: a rejected nonce is not a failure of the order; instant-acme
                    // already retried the request, so start over at once (bounded).
                    Err(e) if e.is_bad_nonce() && bad_nonces < MAX_BAD_NONCE_RESTARTS => {
                        bad_nonces += 1;
                        tracing::info!(names = %self.spec.names.join(","), "the CA rejected our nonces; retrying at once");
                    }
                    Err(e) => {
                        bad_nonces = 0;
                        self.backoff.fail(SystemTime::now(), self.retry_after.until());
                        let retry = self
                            .backoff
                            .not_before()
                            .and_then(|t| t.duration_since(SystemTime::now()).ok())
                            .unwrap_or_default();
                        tracing::error!(names = %self.spec.names.join(","), error = %e, failures = self.backoff.failures(), retry_in_s = retry.as_secs(), "certificate order failed; the current certificate (if any) keeps serving");
                    }
                }
                continue;
            }
            let wake = earliest.min(now + self.spec.cfg.checkinterval);
            tokio::time::sleep(wake.duration_since(now).unwrap_or_default()).await;
        }
    }

    /// Loads the stored certificate if it is newer than the one served, and serves it.
    fn pick_up_stored(&mut self) {
        let stored = match self.store.load(&self.spec.dir) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read stored certificate");
                return;
            }
        };
        if self.current.as_ref().is_some_and(|c| c.version == stored.version) {
            return;
        }
        match usable(&stored.chain_pem, &stored.key_pem, &self.spec.names) {
            Ok((key, info, leaf)) => {
                tracing::info!(names = %self.spec.names.join(","), version = stored.version, serial = %info.serial, "certificate loaded from storage");
                self.serve(stored.version, key, info, leaf);
            }
            Err(e) => tracing::warn!(dir = %self.spec.dir.display(), error = %e, "stored certificate not usable"),
        }
    }

    fn serve(&mut self, version: u64, key: Arc<CertifiedKey>, info: CertInfo, leaf: Vec<u8>) {
        if info.not_before > SystemTime::now() + Duration::from_secs(60) {
            tracing::warn!(names = %self.spec.names.join(","), "the certificate starts in the future: is this machine's clock behind?");
        }
        self.current = Some(Current { version, info, leaf });
        self.ari = Ari::Unknown;
        let _ = self.events.send(Event::Certificate {
            unit: self.spec.id.clone(),
            key,
        });
    }

    /// When the served certificate should be renewed (now if there is none).
    async fn due(&mut self, now: SystemTime) -> SystemTime {
        let Some(cur) = &self.current else { return now };
        if cur.info.not_after <= now {
            return now;
        }
        let ratio_point = |r: f64| schedule::renew_at(&cur.info, r);
        match self.spec.cfg.renew {
            RenewPolicy::Ratio(r) => ratio_point(r),
            RenewPolicy::Ari => {
                if let Ari::Window { at, refetch } = self.ari {
                    if now < refetch {
                        return at;
                    }
                }
                if matches!(self.ari, Ari::Unsupported) {
                    return ratio_point(schedule::DEFAULT_RATIO);
                }
                let fallback = ratio_point(schedule::DEFAULT_RATIO);
                match self.ask_ari().await {
                    Ok(Some((at, refetch))) => {
                        self.ari = Ari::Window { at, refetch };
                        at
                    }
                    Ok(None) => {
                        self.ari = Ari::Unsupported;
                        fallback
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ACME renewal information (ARI) unavailable; using a third of the lifetime for now");
                        self.ari = Ari::Window {
                            at: fallback,
                            refetch: now + Duration::from_secs(3600),
                        };
                        fallback
                    }
                }
            }
        }
    }

    /// The ARI point for the served certificate: `None` when the CA has no ARI.
    async fn ask_ari(&mut self) -> Result<Option<(SystemTime, SystemTime)>, AcmeError> {
        let leaf = match &self.current {
            Some(c) => rustls_pki_types::CertificateDer::from(c.leaf.clone()),
            None => return Ok(None),
        };
        let id = CertificateIdentifier::try_from(&leaf).map_err(AcmeError::Cert)?;
        let account = self.account().await?;
        match account.renewal_info(&id).await {
            Ok((info, hint)) => {
                let jitter = f64::from(
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos())
                        .unwrap_or(0),
                ) / 1e9;
                let start = SystemTime::from(info.suggested_window.start);
                let end = SystemTime::from(info.suggested_window.end);
                let at = schedule::ari_point(start, end, jitter);
                let refetch = SystemTime::now()
                    + if hint.is_zero() {
                        ARI_REFRESH
                    } else {
                        hint.min(ARI_REFRESH)
                    };
                tracing::info!(names = %self.spec.names.join(","), "ARI suggests renewing between {} and {}", httpdate::fmt_http_date(start), httpdate::fmt_http_date(end));
                Ok(Some((at, refetch)))
            }
            Err(instant_acme::Error::Unsupported(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The ACME account of this CA, shared by every certificate of the process: loaded from
    /// storage, or created once (under a storage lock, so instances sharing the folder do
    /// not create one each) and stored.
    async fn account(&mut self) -> Result<Account, AcmeError> {
        let slot = self.account.clone();
        let mut guard = slot.lock().await;
        if let Some(a) = &*guard {
            return Ok(a.clone());
        }
        let a = self.load_or_create_account(None).await?;
        *guard = Some(a.clone());
        Ok(a)
    }

    /// Replaces an account the CA no longer knows (`stale` is its id), once for everyone.
    async fn replace_account(&mut self, stale: &str) -> Result<Account, AcmeError> {
        let slot = self.account.clone();
        let mut guard = slot.lock().await;
        if let Some(a) = &*guard {
            if a.id() != stale {
                return Ok(a.clone());
            }
        }
        tracing::warn!(ca = %self.spec.cfg.ca, "the CA does not know our account any more; creating a new one");
        let a = self.load_or_create_account(Some(stale)).await?;
        *guard = Some(a.clone());
        Ok(a)
    }

    async fn load_or_create_account(&mut self, stale: Option<&str>) -> Result<Account, AcmeError> {
        let ca = self.spec.cfg.ca.clone();
        let lock_path = self.store.ca_dir(&ca).join("account.lock");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(a) = self.stored_account(stale).await? {
                return Ok(a);
            }
            crate::storage::ensure_private_dir(&self.store.ca_dir(&ca)).map_err(|e| AcmeError::Setup(e.to_string()))?;
            match Lock::try_acquire(&lock_path, &self.holder, lock::STALE_AFTER)
                .map_err(|e| AcmeError::Lock(e.to_string()))?
            {
                Some(_lock) => {
                    // Created by another instance while we looked?
                    if let Some(a) = self.stored_account(stale).await? {
                        return Ok(a);
                    }
                    return self.create_account().await;
                }
                None if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(500)).await,
                None => return Err(AcmeError::Lock("another instance is creating the ACME account".into())),
            }
        }
    }

    /// The stored account, unless missing, corrupt or the `stale` one.
    async fn stored_account(&mut self, stale: Option<&str>) -> Result<Option<Account>, AcmeError> {
        let ca = self.spec.cfg.ca.clone();
        let Some(json) = self.store.load_account(&ca)? else {
            return Ok(None);
        };
        let creds = match serde_json::from_str::<AccountCredentials>(&json) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(ca = %ca, error = %e, "stored ACME account is corrupt; creating a new one");
                return Ok(None);
            }
        };
        let a = Account::builder_with_http(Box::new(self.http()?))
            .from_credentials(creds)
            .await?;
        if stale.is_some_and(|s| a.id() == s) {
            return Ok(None);
        }
        Ok(Some(a))
    }

    async fn create_account(&mut self) -> Result<Account, AcmeError> {
        let ca = self.spec.cfg.ca.clone();
        let contact: Vec<String> = self.spec.cfg.email.iter().map(|e| format!("mailto:{e}")).collect();
        let contact_refs: Vec<&str> = contact.iter().map(String::as_str).collect();
        let eab = match &self.spec.cfg.eab {
            Some((kid, hmac)) => {
                use base64::Engine;
                let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(hmac.trim_end_matches('='))
                    .map_err(|e| AcmeError::Setup(format!("eab HMAC is not base64url: {e}")))?;
                Some(ExternalAccountKey::new(kid.clone(), &key))
            }
            None => None,
        };
        let (account, creds) = Account::builder_with_http(Box::new(self.http()?))
            .create(
                &NewAccount {
                    contact: &contact_refs,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                ca.clone(),
                eab.as_ref(),
            )
            .await?;
        let json = serde_json::to_string(&creds).map_err(|e| AcmeError::Setup(e.to_string()))?;
        self.store.save_account(&ca, &json)?;
        tracing::info!(ca = %ca, "ACME account created");
        Ok(account)
    }

    /// Orders a new certificate under the storage lock, or waits for the instance that holds
    /// it and takes its result.
    async fn renew(&mut self) -> Result<(), AcmeError> {
        let lock_path = self.spec.dir.join("lock");
        crate::storage::ensure_private_dir(&self.spec.dir)
            .map_err(|e| AcmeError::Setup(format!("{}: {e}", self.spec.dir.display())))?;
        let lock = match Lock::try_acquire(&lock_path, &self.holder, lock::STALE_AFTER)
            .map_err(|e| AcmeError::Lock(e.to_string()))?
        {
            Some(l) => l,
            None => return self.wait_for_other().await,
        };
        // Another instance may have finished just before we took the lock.
        self.pick_up_stored();
        let now = SystemTime::now();
        if self.due(now).await > now {
            return Ok(());
        }
        tracing::info!(names = %self.spec.names.join(","), ca = %self.spec.cfg.ca, "ordering a certificate");
        let result = tokio::select! {
            r = self.order_with_account() => r,
            e = heartbeat(&lock) => Err(e),
        };
        let outcome = match &result {
            Ok(_) => OrderResult::Valid,
            Err(AcmeError::Invalid(_)) => OrderResult::Invalid,
            Err(_) => OrderResult::Error,
        };
        let _ = self.events.send(Event::Order(outcome));
        let (chain, key_pem) = result?;
        let (key, info, leaf) = usable(&chain, &key_pem, &self.spec.names).map_err(AcmeError::Cert)?;
        let meta = serde_json::json!({
            "names": self.spec.names,
            "ca": self.spec.cfg.ca,
            "serial": info.serial,
            "not_before": info.not_before.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "not_after": info.not_after.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        })
        .to_string();
        let version = self.store.save(&self.spec.dir, &chain, &key_pem, &meta)?;
        drop(lock);
        tracing::info!(names = %self.spec.names.join(","), serial = %info.serial, version, not_after = %httpdate::fmt_http_date(info.not_after), "certificate obtained");
        self.serve(version, key, info, leaf);
        Ok(())
    }

    /// Waits while another instance orders; takes its certificate when it appears.
    async fn wait_for_other(&mut self) -> Result<(), AcmeError> {
        tracing::info!(names = %self.spec.names.join(","), "another instance is ordering this certificate; waiting for it");
        let before = self.current.as_ref().map(|c| c.version);
        let lock_path = self.spec.dir.join("lock");
        let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(2)).await;
            self.pick_up_stored();
            if self.current.as_ref().map(|c| c.version) != before {
                return Ok(());
            }
            if !lock_path.exists() || lock::is_abandoned(&lock_path, lock::STALE_AFTER) {
                // It gave up, failed or died: our own attempt (taking the lock over) comes next.
                return Ok(());
            }
        }
        Err(AcmeError::Lock("the instance holding the lock did not finish".into()))
    }

    /// One order, creating a new account once if the CA no longer knows ours.
    async fn order_with_account(&mut self) -> Result<(String, String), AcmeError> {
        let account = self.account().await?;
        match self.order(&account).await {
            Err(AcmeError::Acme(instant_acme::Error::Api(p)))
                if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:accountDoesNotExist") =>
            {
                let account = self.replace_account(account.id()).await?;
                self.order(&account).await
            }
            other => other,
        }
    }

    /// RFC 8555 §7.4: new order, DNS-01 for every authorization, finalize with a fresh key.
    async fn order(&mut self, account: &Account) -> Result<(String, String), AcmeError> {
        let ids: Vec<Identifier> = self.spec.names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let replaces = match (&self.current, self.ari_available(), self.no_replaces) {
            (Some(c), true, false) => {
                CertificateIdentifier::try_from(&rustls_pki_types::CertificateDer::from(c.leaf.clone()))
                    .ok()
                    .map(|i| i.into_owned())
            }
            _ => None,
        };
        let mut order = match replaces {
            Some(id) => match account.new_order(&NewOrder::new(&ids).replaces(id)).await {
                Ok(o) => o,
                Err(instant_acme::Error::Api(p)) => return Err(instant_acme::Error::Api(p).into()),
                Err(e) => {
                    tracing::warn!(error = %e, "the CA did not take the ARI replaces field; ordering without it");
                    self.no_replaces = true;
                    account.new_order(&NewOrder::new(&ids)).await?
                }
            },
            None => account.new_order(&NewOrder::new(&ids)).await?,
        };
        // Publish every value first (apex and wildcard share a name), then tell the CA.
        let mut values = Vec::new();
        {
            let mut authzs = order.authorizations();
            while let Some(a) = authzs.next().await {
                let mut a = a?;
                match a.status {
                    AuthorizationStatus::Valid => continue,
                    AuthorizationStatus::Pending => {}
                    other => {
                        return Err(AcmeError::Invalid(format!(
                            "authorization for {} is {other:?}",
                            a.identifier()
                        )));
                    }
                }
                let ident = a.identifier().to_string();
                let ch = a
                    .challenge(ChallengeType::Dns01)
                    .ok_or_else(|| AcmeError::Invalid(format!("no dns-01 challenge offered for {ident}")))?;
                let name = challenge_name(&ident).map_err(AcmeError::Invalid)?;
                values.push((name, ch.key_authorization().dns_value()));
            }
        }
        let generation = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let _withdraw = Withdraw(self.peers.clone(), generation);
        let mut _remote = None;
        if !values.is_empty() {
            match &self.spec.cfg.dns {
                // A server ringdns does not run: published there, deleted when the order ends.
                Some(p) => {
                    let published = super::remote::publish(p, &values).await?;
                    _remote = Some(RemoteWithdraw(Some(((**p).clone(), published))));
                }
                None => self.post_and_wait(generation, &values).await?,
            }
            let mut authzs = order.authorizations();
            while let Some(a) = authzs.next().await {
                let mut a = a?;
                if a.status != AuthorizationStatus::Pending {
                    continue;
                }
                if let Some(mut ch) = a.challenge(ChallengeType::Dns01) {
                    ch.set_ready().await?;
                }
            }
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(ORDER_TIMEOUT);
        match order.poll_ready(&retry).await? {
            OrderStatus::Ready => {}
            status => {
                let detail = order.state().error.as_ref().map(|p| p.to_string()).unwrap_or_default();
                return Err(AcmeError::Invalid(format!("order is {status:?} {detail}")));
            }
        }
        let key = cert::new_key(self.spec.cfg.key_type).map_err(|e| AcmeError::Cert(e.to_string()))?;
        let csr = cert::csr_der(&self.spec.names, &key).map_err(|e| AcmeError::Cert(e.to_string()))?;
        order.finalize_csr(&csr).await?;
        let chain = order.poll_certificate(&retry).await?;
        Ok((chain, key.serialize_pem()))
    }

    /// Posts the values for every instance sharing the storage and waits until each live one
    /// (this one included) serves them (README, "ACME certificates": a challenge is not triggered before every
    /// authoritative node serves it).
    async fn post_and_wait(&self, generation: u64, values: &[(NameKey, String)]) -> Result<(), AcmeError> {
        let posted = Posted {
            generation,
            values: values.iter().map(|(k, v)| (display(k.as_slice()), v.clone())).collect(),
        };
        self.peers.register().map_err(|e| AcmeError::Board(e.to_string()))?;
        self.peers
            .post(&posted)
            .map_err(|e| AcmeError::Board(format!("{}: {e}", self.spec.dir.display())))?;
        let deadline = tokio::time::Instant::now() + PEER_ACK_TIMEOUT;
        loop {
            let missing = self.peers.missing_acks(generation);
            if missing.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AcmeError::Board(format!(
                    "not served within {PEER_ACK_TIMEOUT:?} by {}",
                    missing.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn ari_available(&self) -> bool {
        matches!(self.ari, Ari::Window { .. })
    }
}

/// Removes the posted challenge when an order attempt ends, however it ends.
struct Withdraw(Peers, u64);

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.0.withdraw(self.1);
    }
}

/// Keeps this instance registered with the others sharing the storage and serves whatever
/// challenge is posted there, acknowledging each one once the shards serve it.
/// Deletes values published on a remote server when the order is over, however it ends.
struct RemoteWithdraw(Option<(crate::config::DnsPublisher, Vec<super::remote::Published>)>);

impl Drop for RemoteWithdraw {
    fn drop(&mut self) {
        if let Some((p, published)) = self.0.take() {
            tokio::spawn(super::remote::withdraw(p, published));
        }
    }
}

async fn follow(peers: Peers, board: Arc<Board>, unit: String) {
    struct Leave(Peers);
    impl Drop for Leave {
        fn drop(&mut self) {
            self.0.leave();
        }
    }
    let _leave = Leave(peers.clone());
    let mut last_register = None::<tokio::time::Instant>;
    let mut served: Option<u64> = None;
    let mut stamp = None;
    loop {
        if last_register.is_none_or(|t| t.elapsed() >= MEMBER_HEARTBEAT) {
            if let Err(e) = peers.register() {
                tracing::warn!(error = %e, "cannot register in the certificate storage");
            }
            last_register = Some(tokio::time::Instant::now());
        }
        let now_stamp = peers.stamp();
        if now_stamp != stamp {
            stamp = now_stamp;
            match peers.read() {
                Some(posted) if served != Some(posted.generation) => {
                    let values: Vec<(NameKey, String)> = posted
                        .values
                        .iter()
                        .filter_map(|(n, v)| Some((challenge_key(n)?, v.clone())))
                        .collect();
                    match board.publish(&unit, &values).await {
                        Ok(()) => {
                            served = Some(posted.generation);
                            if let Err(e) = peers.ack(posted.generation) {
                                tracing::warn!(error = %e, "cannot acknowledge the challenge in storage");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot serve the posted challenge"),
                    }
                }
                Some(_) => {}
                None => {
                    if served.take().is_some() {
                        board.clear(&unit);
                    }
                }
            }
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

fn challenge_key(presentation: &str) -> Option<NameKey> {
    crate::zone::name::parse_abs(presentation).ok().map(|n| NameKey::of(&n))
}

/// Proves we still hold the lock every [`lock::HEARTBEAT`]; returns when we lost it.
async fn heartbeat(lock: &Lock) -> AcmeError {
    loop {
        tokio::time::sleep(lock::HEARTBEAT).await;
        if let Err(e) = lock.heartbeat() {
            return AcmeError::Lock(e.to_string());
        }
    }
}

/// A stored or new pair, checked: key matches, names match, not expired.
pub fn usable(
    chain_pem: &str,
    key_pem: &str,
    names: &[String],
) -> Result<(Arc<CertifiedKey>, CertInfo, Vec<u8>), String> {
    let key =
        pair_from_pem(chain_pem.as_bytes(), key_pem.as_bytes(), "chain.pem", "key.pem").map_err(|e| e.to_string())?;
    let leaf = key.cert.first().ok_or("empty chain")?.to_vec();
    let info = cert::info(&leaf)?;
    if !info.covers(names) {
        return Err(format!("certificate is for {:?}, not {:?}", info.names, names));
    }
    if info.not_after <= SystemTime::now() {
        return Err("certificate has expired".into());
    }
    Ok((key, info, leaf))
}
