//! The open TCP, DoT and DoH connections of one shard: caps per shard and per client prefix,
//! a budget of TLS handshakes of its own, each connection's phase and the deadline it sets,
//! shorter deadlines under pressure, and eviction of the oldest waiting connection when a
//! newcomer finds the shard full.
//!
//! Limits (also in the README):
//! - at most `per_shard` connections per shard and `per_prefix` per client /24 (IPv4) or /56
//!   (IPv6) per shard; over the prefix cap a newcomer is accepted and closed at once (one
//!   prefix only hurts itself);
//! - a full shard evicts its oldest connection that is waiting for a handshake or for a
//!   message (idle), so a flood of idle or half-open connections never locks out newcomers;
//!   a newcomer is refused only when every connection is busy answering or mid-message;
//! - TLS handshakes have their own budget, `handshakes_per_shard` and `handshakes_per_prefix`:
//!   a handshake over the prefix budget is refused, one over the shard budget evicts the
//!   oldest handshake;
//! - under pressure (3/4 of the connection cap or of the handshake budget in use) the idle
//!   and handshake limits drop to 1 s, for the connections already waiting too;
//! - a started message must arrive whole within `message` of its first byte.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::IpAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::telemetry::stats::ShardStatsRef;

/// Timeouts and caps of stream connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Open connections per shard.
    pub per_shard: usize,
    /// Open connections per client prefix per shard.
    pub per_prefix: usize,
    /// TLS handshakes in progress per shard.
    pub handshakes_per_shard: usize,
    /// TLS handshakes in progress per client prefix per shard.
    pub handshakes_per_prefix: usize,
    /// Idle time allowed between messages (DoH has its own, longer one).
    pub idle: Duration,
    /// Idle time allowed when the shard is under pressure.
    pub idle_under_pressure: Duration,
    /// Time for a whole message once its first byte arrived.
    pub message: Duration,
    /// Time to write a batch of replies.
    pub write: Duration,
    /// Time for a TLS handshake.
    pub handshake: Duration,
    /// Time for a TLS handshake when the shard is under pressure.
    pub handshake_under_pressure: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            per_shard: 1024,
            per_prefix: 256,
            handshakes_per_shard: 256,
            handshakes_per_prefix: 32,
            idle: crate::dns::wire::STREAM_IDLE_TIMEOUT,
            idle_under_pressure: Duration::from_secs(1),
            message: Duration::from_secs(1),
            write: Duration::from_secs(5),
            handshake: Duration::from_secs(5),
            handshake_under_pressure: Duration::from_secs(1),
        }
    }
}

/// One connection's own limits: its listener's `timeouts` over the shard's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnTimeouts {
    /// Idle time allowed between messages when the shard is not under pressure.
    pub idle: Duration,
    /// Time for a whole message once its first byte arrived.
    pub message: Duration,
    /// Time to write a batch of replies.
    pub write: Duration,
    /// Queries answered before the connection is closed (`None`: no limit).
    pub max_queries: Option<u32>,
}

impl ConnLimits {
    /// The shard's defaults for a connection with idle limit `idle`.
    pub fn timeouts(&self, idle: Duration) -> ConnTimeouts {
        ConnTimeouts {
            idle,
            message: self.message,
            write: self.write,
            max_queries: None,
        }
    }
}

/// What a connection is doing; it sets the connection's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// In its TLS handshake since then.
    Handshake(Instant),
    /// Waiting for a message since then.
    Idle(Instant),
    /// The first byte of a message arrived then; the rest is due within `message`.
    Message(Instant),
    /// Answering or writing: no read deadline (the write timeout applies), never evicted.
    Busy,
}

impl Phase {
    /// When a connection in this phase may be evicted, the time it has waited since.
    fn waiting_since(self) -> Option<Instant> {
        match self {
            Phase::Handshake(t) | Phase::Idle(t) => Some(t),
            Phase::Message(_) | Phase::Busy => None,
        }
    }
}

/// Why a newcomer was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its prefix has `per_prefix` connections.
    Prefix = 0,
    /// Its prefix has `handshakes_per_prefix` handshakes in progress.
    PrefixHandshakes,
    /// The shard is full and every connection is busy.
    Full,
}

/// Why a watched wait ended before its future.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The phase's deadline passed.
    Timeout,
    /// The connection was evicted for a newcomer.
    Evicted,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Prefix {
    V4([u8; 3]),
    V6([u8; 7]),
}

fn prefix(ip: IpAddr) -> Prefix {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            Prefix::V4([o[0], o[1], o[2]])
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => prefix(IpAddr::V4(v4)),
            None => {
                let o = a.octets();
                Prefix::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6]])
            }
        },
    }
}

/// Connections and handshakes of one prefix.
#[derive(Clone, Copy, Default)]
struct Counts {
    open: usize,
    handshakes: usize,
}

/// One connection, as the shard's table sees it.
struct Slot {
    prefix: Prefix,
    /// Its own limits.
    timeouts: ConnTimeouts,
    phase: Cell<Phase>,
    /// Evicted: its counts are released, it is to close.
    evicted: Cell<bool>,
    /// Bumped when its deadline may have moved earlier (eviction, pressure).
    kicks: Cell<u64>,
    waker: RefCell<Option<Waker>>,
}

impl Slot {
    fn kick(&self) {
        self.kicks.set(self.kicks.get().wrapping_add(1));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once the slot is kicked after `seen`.
    async fn kicked(&self, seen: u64) {
        poll_fn(|cx| {
            if self.kicks.get() != seen {
                return Poll::Ready(());
            }
            // Polled on every wake of the connection: keep the waker it already has.
            let mut slot = self.waker.borrow_mut();
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// The open connections of one shard.
pub struct Conns {
    limits: ConnLimits,
    slots: RefCell<Vec<Option<Rc<Slot>>>>,
    free: RefCell<Vec<usize>>,
    open: Cell<usize>,
    handshakes: Cell<usize>,
    per_prefix: RefCell<HashMap<Prefix, Counts>>,
    pressure: Cell<bool>,
    /// Where `open` is published for the metrics.
    stats: ShardStatsRef,
}

impl Conns {
    /// Tracking for one shard, publishing the open count in `stats`.
    pub fn new(limits: ConnLimits, stats: ShardStatsRef) -> Self {
        Conns {
            limits,
            slots: RefCell::default(),
            free: RefCell::default(),
            open: Cell::new(0),
            handshakes: Cell::new(0),
            per_prefix: RefCell::default(),
            pressure: Cell::new(false),
            stats,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ConnLimits {
        &self.limits
    }

    /// Connections open now (evicted ones no longer count).
    pub fn open(&self) -> usize {
        self.open.get()
    }

    /// Whether the idle and handshake limits are shortened now.
    pub fn under_pressure(&self) -> bool {
        self.pressure.get()
    }

    /// Admits a connection from `peer` that starts in `phase` (a TLS handshake or waiting for
    /// its first message) with its own `timeouts`, evicting the oldest waiting connection
    /// when the shard is full. Evicted connections close on their next poll; their slots are
    /// free at once. Returns how many were evicted with the guard.
    pub fn try_open(
        self: &Rc<Self>,
        peer: IpAddr,
        phase: Phase,
        timeouts: ConnTimeouts,
    ) -> Result<(ConnGuard, usize), Refusal> {
        let p = prefix(peer);
        let tls = matches!(phase, Phase::Handshake(_));
        let counts = self.per_prefix.borrow().get(&p).copied().unwrap_or_default();
        if counts.open >= self.limits.per_prefix {
            return Err(Refusal::Prefix);
        }
        if tls && counts.handshakes >= self.limits.handshakes_per_prefix {
            return Err(Refusal::PrefixHandshakes);
        }
        let mut evicted = 0;
        if tls && self.handshakes.get() >= self.limits.handshakes_per_shard {
            // The budget holds at least one handshake, the oldest of which goes.
            evicted += usize::from(self.evict_oldest(|ph| matches!(ph, Phase::Handshake(_))));
        }
        if self.open.get() >= self.limits.per_shard {
            if !self.evict_oldest(|ph| ph.waiting_since().is_some()) {
                return Err(Refusal::Full);
            }
            evicted += 1;
        }
        let slot = Rc::new(Slot {
            prefix: p,
            timeouts,
            phase: Cell::new(phase),
            evicted: Cell::new(false),
            kicks: Cell::new(0),
            waker: RefCell::default(),
        });
        self.count(&slot, 1);
        let index = match self.free.borrow_mut().pop() {
            Some(i) => {
                self.slots.borrow_mut()[i] = Some(slot.clone());
                i
            }
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Some(slot.clone()));
                slots.len() - 1
            }
        };
        self.refresh_pressure();
        let guard = ConnGuard {
            conns: self.clone(),
            slot,
            index,
        };
        Ok((guard, evicted))
    }

    /// Adds (`sign` 1) or removes (-1) a slot's connection and, in a handshake, its handshake.
    fn count(&self, slot: &Slot, sign: isize) {
        let step = |c: &Cell<usize>| c.set(c.get().saturating_add_signed(sign));
        let handshake = matches!(slot.phase.get(), Phase::Handshake(_));
        step(&self.open);
        self.stats.conns_open.set(self.open.get() as u64);
        if handshake {
            step(&self.handshakes);
        }
        let mut map = self.per_prefix.borrow_mut();
        let c = map.entry(slot.prefix).or_default();
        c.open = c.open.saturating_add_signed(sign);
        if handshake {
            c.handshakes = c.handshakes.saturating_add_signed(sign);
        }
        if c.open == 0 {
            map.remove(&slot.prefix);
        }
    }

    /// Evicts the connection that has waited longest among those `eligible` by phase.
    fn evict_oldest(&self, eligible: impl Fn(Phase) -> bool) -> bool {
        let victim = {
            let slots = self.slots.borrow();
            slots
                .iter()
                .flatten()
                .filter(|s| !s.evicted.get() && eligible(s.phase.get()))
                .min_by_key(|s| s.phase.get().waiting_since())
                .cloned()
        };
        let Some(victim) = victim else {
            return false;
        };
        self.count(&victim, -1);
        victim.evicted.set(true);
        victim.kick();
        true
    }

    fn set_phase(&self, slot: &Slot, phase: Phase) {
        let was = slot.phase.replace(phase);
        if slot.evicted.get() {
            return;
        }
        let (before, after) = (matches!(was, Phase::Handshake(_)), matches!(phase, Phase::Handshake(_)));
        if before != after {
            let sign: isize = if after { 1 } else { -1 };
            self.handshakes.set(self.handshakes.get().saturating_add_signed(sign));
            if let Some(c) = self.per_prefix.borrow_mut().get_mut(&slot.prefix) {
                c.handshakes = c.handshakes.saturating_add_signed(sign);
            }
            self.refresh_pressure();
        }
    }

    /// Under pressure at 3/4 of the connection cap or of the handshake budget. When it
    /// begins, every waiting connection is told, so its shorter deadline applies at once.
    fn refresh_pressure(&self) {
        let l = &self.limits;
        let now = self.open.get() * 4 >= l.per_shard * 3 || self.handshakes.get() * 4 >= l.handshakes_per_shard * 3;
        if now && !self.pressure.get() {
            for s in self.slots.borrow().iter().flatten() {
                if s.phase.get().waiting_since().is_some() {
                    s.kick();
                }
            }
        }
        self.pressure.set(now);
    }

    /// The deadline of a slot in its current phase.
    fn deadline(&self, slot: &Slot) -> Option<Instant> {
        let l = &self.limits;
        let pressure = self.pressure.get();
        match slot.phase.get() {
            Phase::Handshake(t) if pressure => Some(t + l.handshake_under_pressure.min(l.handshake)),
            Phase::Handshake(t) => Some(t + l.handshake),
            Phase::Idle(t) if pressure => Some(t + l.idle_under_pressure.min(slot.timeouts.idle)),
            Phase::Idle(t) => Some(t + slot.timeouts.idle),
            Phase::Message(t) => Some(t + slot.timeouts.message),
            Phase::Busy => None,
        }
    }
}

/// A connection's place in the table; dropping it frees the place.
pub struct ConnGuard {
    conns: Rc<Conns>,
    slot: Rc<Slot>,
    index: usize,
}

impl ConnGuard {
    /// The shard's table.
    pub fn conns(&self) -> &Conns {
        &self.conns
    }

    /// The connection's own limits.
    pub fn timeouts(&self) -> &ConnTimeouts {
        &self.slot.timeouts
    }

    /// Sets what the connection is doing. Moving a deadline later needs no wake-up: a
    /// watched wait looks again when the earlier one passes.
    pub fn set_phase(&self, phase: Phase) {
        self.conns.set_phase(&self.slot, phase);
    }

    /// Runs `fut` until it completes, the deadline of the connection's phase passes (looked
    /// up again whenever it may have moved), or the connection is evicted.
    pub async fn watch<F: Future>(&self, fut: F) -> Result<F::Output, Cut> {
        let mut fut = std::pin::pin!(fut);
        loop {
            if self.slot.evicted.get() {
                return Err(Cut::Evicted);
            }
            let seen = self.slot.kicks.get();
            let deadline = self.conns.deadline(&self.slot);
            let timer = async {
                match deadline {
                    Some(d) => monoio::time::sleep_until(monoio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            monoio::select! {
                out = &mut fut => return Ok(out),
                _ = timer => {
                    let due = self.conns.deadline(&self.slot);
                    if due.is_some_and(|d| Instant::now() >= d) {
                        return Err(Cut::Timeout);
                    }
                }
                _ = self.slot.kicked(seen) => {}
            }
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if !self.slot.evicted.get() {
            self.conns.count(&self.slot, -1);
            self.conns.refresh_pressure();
        }
        self.conns.slots.borrow_mut()[self.index] = None;
        self.conns.free.borrow_mut().push(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            per_shard: 4,
            per_prefix: 3,
            handshakes_per_shard: 2,
            handshakes_per_prefix: 2,
            ..ConnLimits::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const IDLE: Duration = Duration::from_secs(10);

    #[test]
    fn prefix_cap_refuses_only_that_prefix() {
        let c = Rc::new(Conns::new(limits(), ShardStatsRef::default()));
        let t = Instant::now();
        let _a: Vec<_> = (0..3)
            .map(|_| {
                c.try_open(ip("192.0.2.1"), Phase::Idle(t), limits().timeouts(IDLE))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            c.try_open(ip("192.0.2.200"), Phase::Idle(t), limits().timeouts(IDLE))
                .err(),
            Some(Refusal::Prefix)
        );
        assert!(
            c.try_open(ip("192.0.3.1"), Phase::Idle(t), limits().timeouts(IDLE))
                .is_ok()
        );
    }

    #[test]
    fn full_shard_evicts_the_oldest_waiting_and_refuses_when_all_are_busy() {
        let c = Rc::new(Conns::new(limits(), ShardStatsRef::default()));
        let t0 = Instant::now();
        let old = c
            .try_open(ip("192.0.2.1"), Phase::Idle(t0), limits().timeouts(IDLE))
            .unwrap()
            .0;
        let busy = c
            .try_open(ip("198.51.100.1"), Phase::Idle(t0), limits().timeouts(IDLE))
            .unwrap()
            .0;
        busy.set_phase(Phase::Busy);
        let mid = c
            .try_open(
                ip("203.0.113.1"),
                Phase::Idle(t0 + Duration::from_secs(1)),
                limits().timeouts(IDLE),
            )
            .unwrap()
            .0;
        mid.set_phase(Phase::Message(t0));
        let young = c
            .try_open(
                ip("192.0.2.2"),
                Phase::Idle(t0 + Duration::from_secs(2)),
                limits().timeouts(IDLE),
            )
            .unwrap()
            .0;
        assert_eq!(c.open(), 4);
        let (new, evicted) = c
            .try_open(
                ip("10.0.0.1"),
                Phase::Idle(t0 + Duration::from_secs(3)),
                limits().timeouts(IDLE),
            )
            .unwrap();
        assert_eq!((evicted, c.open()), (1, 4));
        assert!(
            old.slot.evicted.get() && !young.slot.evicted.get(),
            "the oldest idle one went"
        );
        drop(old);
        assert_eq!(c.open(), 4, "an evicted guard's drop does not count twice");
        // Now: busy, mid-message, young (idle), new (idle): the young one goes next.
        let _newer = c
            .try_open(ip("10.0.1.1"), Phase::Idle(Instant::now()), limits().timeouts(IDLE))
            .unwrap();
        assert!(young.slot.evicted.get() && !new.slot.evicted.get());
        new.set_phase(Phase::Busy);
        _newer.0.set_phase(Phase::Busy);
        assert_eq!(
            c.try_open(ip("10.0.2.1"), Phase::Idle(Instant::now()), limits().timeouts(IDLE))
                .err(),
            Some(Refusal::Full),
            "busy and mid-message connections are never evicted"
        );
    }

    #[test]
    fn handshakes_have_their_own_budget() {
        let c = Rc::new(Conns::new(limits(), ShardStatsRef::default()));
        let t = Instant::now();
        let a = c
            .try_open(ip("192.0.2.1"), Phase::Handshake(t), limits().timeouts(IDLE))
            .unwrap()
            .0;
        let _b = c
            .try_open(ip("192.0.2.2"), Phase::Handshake(t), limits().timeouts(IDLE))
            .unwrap()
            .0;
        assert_eq!(
            c.try_open(ip("192.0.2.3"), Phase::Handshake(t), limits().timeouts(IDLE))
                .err(),
            Some(Refusal::PrefixHandshakes)
        );
        // Over the shard's budget: the oldest handshake makes room.
        let (_c, evicted) = c
            .try_open(
                ip("198.51.100.1"),
                Phase::Handshake(t + Duration::from_secs(1)),
                limits().timeouts(IDLE),
            )
            .unwrap();
        assert_eq!(evicted, 1);
        assert!(a.slot.evicted.get());
        assert_eq!(c.handshakes.get(), 2);
        // A finished handshake leaves the budget.
        _c.set_phase(Phase::Idle(Instant::now()));
        assert_eq!(c.handshakes.get(), 1);
        assert!(
            c.try_open(ip("203.0.113.1"), Phase::Handshake(t), limits().timeouts(IDLE))
                .is_ok()
        );
    }

    #[test]
    fn pressure_shortens_deadlines_of_waiting_connections() {
        let c = Rc::new(Conns::new(limits(), ShardStatsRef::default()));
        let t = Instant::now();
        let a = c
            .try_open(ip("192.0.2.1"), Phase::Idle(t), limits().timeouts(IDLE))
            .unwrap()
            .0;
        assert_eq!(c.deadline(&a.slot), Some(t + IDLE));
        let _b = c
            .try_open(ip("198.51.100.1"), Phase::Idle(t), limits().timeouts(IDLE))
            .unwrap();
        let seen = a.slot.kicks.get();
        let _c = c
            .try_open(ip("203.0.113.1"), Phase::Idle(t), limits().timeouts(IDLE))
            .unwrap();
        assert!(c.under_pressure(), "3 of 4");
        assert_ne!(a.slot.kicks.get(), seen, "waiting connections are told");
        assert_eq!(c.deadline(&a.slot), Some(t + Duration::from_secs(1)));
        a.set_phase(Phase::Message(t));
        assert_eq!(c.deadline(&a.slot), Some(t + Duration::from_secs(1)));
        drop(_c);
        assert!(!c.under_pressure());
    }
}
