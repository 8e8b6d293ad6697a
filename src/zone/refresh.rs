//! When a secondary zone is checked against its primary and when it expires (RFC 1035
//! §4.3.5, RFC 1996 §4): an explicit state that the caller steps with what happened (a
//! transfer, an SOA answer, a failure, a NOTIFY) and asks when to act next. No clock and no
//! I/O here: every step takes `now`, and the jitter comes from the caller.

use std::time::{Duration, Instant};

/// `a > b` in RFC 1982 serial number arithmetic.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

/// The SOA timers that matter here (seconds in the SOA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// How often to check the primary.
    pub refresh: Duration,
    /// How soon to try again after a failed check.
    pub retry: Duration,
    /// How long the data stays good without a successful check.
    pub expire: Duration,
}

impl Timers {
    /// From an SOA's REFRESH, RETRY and EXPIRE, with floors so that a primary's zero does
    /// not make ringdns ask in a loop (1 s each; Knot's floor for refresh is 2 s).
    pub fn from_soa(refresh: u32, retry: u32, expire: u32) -> Timers {
        let secs = |s: u32, floor: u64| Duration::from_secs(u64::from(s).max(floor));
        Timers {
            refresh: secs(refresh, 2),
            retry: secs(retry, 1),
            expire: secs(expire, 1),
        }
    }
}

/// Where a secondary zone stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No data yet (and none on disk): transfer at once, then again every `retry_empty`.
    Empty {
        /// When to try next.
        next: Instant,
    },
    /// Data of `serial`, last confirmed at `since`.
    Loaded {
        /// The serial served.
        serial: u32,
        /// Its timers.
        timers: Timers,
        /// The last successful check (or the load from disk).
        since: Instant,
        /// When to check next (refresh after success, retry after a failure, or now).
        next: Instant,
    },
}

/// How often a zone with no data is tried (CoreDNS: every 10 s).
pub const RETRY_EMPTY: Duration = Duration::from_secs(10);

/// The schedule of one secondary zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refresh {
    state: State,
}

impl Refresh {
    /// A zone with no data: due at once.
    pub fn empty(now: Instant) -> Refresh {
        Refresh {
            state: State::Empty { next: now },
        }
    }

    /// A zone loaded from its copy on disk: served at once, checked at once (its age is
    /// unknown, so `expire` counts from now).
    pub fn from_disk(now: Instant, serial: u32, timers: Timers) -> Refresh {
        Refresh {
            state: State::Loaded {
                serial,
                timers,
                since: now,
                next: now,
            },
        }
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The serial served, if any.
    pub fn serial(&self) -> Option<u32> {
        match self.state {
            State::Empty { .. } => None,
            State::Loaded { serial, .. } => Some(serial),
        }
    }

    /// When the primary is to be asked next.
    pub fn next(&self) -> Instant {
        match self.state {
            State::Empty { next } | State::Loaded { next, .. } => next,
        }
    }

    /// When the data expires (`None` without data).
    pub fn expires(&self) -> Option<Instant> {
        match self.state {
            State::Empty { .. } => None,
            State::Loaded { since, timers, .. } => Some(since + timers.expire),
        }
    }

    /// Whether the data is past its expiry (RFC 1035 §4.3.5: no longer authoritative).
    pub fn expired(&self, now: Instant) -> bool {
        self.expires().is_some_and(|e| now >= e)
    }

    /// A transfer brought `serial` with `timers`: next check after `refresh` plus `jitter`.
    pub fn transferred(&mut self, now: Instant, serial: u32, timers: Timers, jitter: Duration) {
        self.state = State::Loaded {
            serial,
            timers,
            since: now,
            next: now + timers.refresh + jitter,
        };
    }

    /// The primary's SOA says `serial`: `true` when a transfer is needed (it is newer, RFC
    /// 1982, or we have nothing); otherwise the data is confirmed until the next refresh.
    pub fn soa(&mut self, now: Instant, serial: u32, jitter: Duration) -> bool {
        match &mut self.state {
            State::Empty { .. } => true,
            State::Loaded {
                serial: ours,
                timers,
                since,
                next,
            } => {
                if serial_gt(serial, *ours) {
                    return true;
                }
                *since = now;
                *next = now + timers.refresh + jitter;
                false
            }
        }
    }

    /// A check or transfer failed: try again after `retry` (or [`RETRY_EMPTY`]) plus
    /// `jitter`; the data keeps its expiry.
    pub fn failed(&mut self, now: Instant, jitter: Duration) {
        match &mut self.state {
            State::Empty { next } => *next = now + RETRY_EMPTY + jitter,
            State::Loaded { timers, next, .. } => *next = now + timers.retry + jitter,
        }
    }

    /// A NOTIFY from a primary (RFC 1996 §4.7): check at once.
    pub fn notified(&mut self, now: Instant) {
        match &mut self.state {
            State::Empty { next } | State::Loaded { next, .. } => *next = (*next).min(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timers = Timers {
        refresh: Duration::from_secs(3600),
        retry: Duration::from_secs(600),
        expire: Duration::from_secs(86400),
    };

    #[test]
    fn rfc1982_comparison() {
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(1, 2));
        assert!(!serial_gt(5, 5));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(u32::MAX, 0));
    }

    #[test]
    fn a_zone_through_its_timers() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut r = Refresh::empty(t0);
        assert_eq!((r.next(), r.serial(), r.expired(s(1_000_000))), (t0, None, false));
        r.failed(t0, Duration::ZERO);
        assert_eq!(r.next(), s(10));
        r.transferred(s(10), 5, T, Duration::from_secs(3));
        assert_eq!((r.serial(), r.next()), (Some(5), s(10 + 3600 + 3)));
        // Same serial: confirmed, next refresh from now.
        assert!(!r.soa(s(3613), 5, Duration::ZERO));
        assert_eq!(r.next(), s(3613 + 3600));
        // Older serial (RFC 1982): no transfer either.
        assert!(!r.soa(s(3700), 4, Duration::ZERO));
        // Newer: transfer.
        assert!(r.soa(s(3800), 6, Duration::ZERO));
        // The primary goes away: retries every 600 s, and the data expires 86400 s after
        // the last confirmation (at 3700).
        r.failed(s(3800), Duration::ZERO);
        assert_eq!(r.next(), s(4400));
        assert!(!r.expired(s(3700 + 86399)));
        assert!(r.expired(s(3700 + 86400)));
        // A NOTIFY makes it due at once; a later one never delays.
        r.notified(s(4000));
        assert_eq!(r.next(), s(4000));
        r.notified(s(4100));
        assert_eq!(r.next(), s(4000));
        // Serial arithmetic wraps: 1 is newer than 4294967295.
        r.transferred(s(5000), u32::MAX, T, Duration::ZERO);
        assert!(r.soa(s(5001), 1, Duration::ZERO));
        // A copy from disk is checked at once and expires from the load.
        let d = Refresh::from_disk(s(10), 9, T);
        assert_eq!((d.next(), d.expires()), (s(10), Some(s(10 + 86400))));
        assert_eq!(Timers::from_soa(0, 0, 0).refresh, Duration::from_secs(2));
    }
}
