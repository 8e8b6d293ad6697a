//! When to order: renewal times (ARI, RFC 9773, or a fraction of the lifetime) and the
//! back-off after failures.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use super::cert::CertInfo;

/// First retry after a failure; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
/// Longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// At most this many failed orders per hour (Let's Encrypt allows 5 failed validations per
/// identifier per hour).
pub const MAX_FAILURES_PER_HOUR: usize = 5;
/// Default renewal point without ARI: a third of the lifetime left.
pub const DEFAULT_RATIO: f64 = 1.0 / 3.0;

/// The time to renew at: when `ratio` of the lifetime remains.
pub fn renew_at(info: &CertInfo, ratio: f64) -> SystemTime {
    let keep = info.lifetime().mul_f64(ratio.clamp(0.0, 1.0));
    info.not_after.checked_sub(keep).unwrap_or(info.not_before)
}

/// A point in an ARI suggested window, spread by `jitter` in [0, 1) (RFC 9773 §4.2).
pub fn ari_point(start: SystemTime, end: SystemTime, jitter: f64) -> SystemTime {
    let span = end.duration_since(start).unwrap_or(Duration::ZERO);
    start + span.mul_f64(jitter.clamp(0.0, 0.999))
}

/// Failure bookkeeping of one certificate.
#[derive(Debug, Default)]
pub struct Backoff {
    consecutive: u32,
    recent: VecDeque<SystemTime>,
    not_before: Option<SystemTime>,
}

impl Backoff {
    /// Records a failure at `now`; `retry_after` is the CA's own wish, if it said one.
    pub fn fail(&mut self, now: SystemTime, retry_after: Option<SystemTime>) {
        self.consecutive = self.consecutive.saturating_add(1);
        let exp = self.consecutive.saturating_sub(1).min(20);
        let delay = FIRST_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF);
        let mut next = now + delay;
        if let Some(ra) = retry_after {
            next = next.max(ra);
        }
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t).unwrap_or(Duration::ZERO) >= Duration::from_secs(3600))
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= MAX_FAILURES_PER_HOUR {
            if let Some(oldest) = self.recent.front() {
                next = next.max(*oldest + Duration::from_secs(3600));
            }
        }
        self.not_before = Some(next);
    }

    /// Records a success.
    pub fn succeed(&mut self) {
        self.consecutive = 0;
        self.not_before = None;
    }

    /// The earliest time of the next attempt.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.not_before
    }

    /// Consecutive failures.
    pub fn failures(&self) -> u32 {
        self.consecutive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(days: u64) -> CertInfo {
        let nb = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        CertInfo {
            not_before: nb,
            not_after: nb + Duration::from_secs(days * 86400),
            names: vec![],
            serial: String::new(),
        }
    }

    #[test]
    fn renewal_points() {
        let i = info(90);
        assert_eq!(
            renew_at(&i, DEFAULT_RATIO),
            i.not_before + Duration::from_secs(60 * 86400)
        );
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(
            ari_point(start, start + Duration::from_secs(100), 0.5),
            start + Duration::from_secs(50)
        );
    }

    #[test]
    fn backoff_doubles_caps_and_limits_failures_per_hour() {
        let mut b = Backoff::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000_000);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..12 {
            b.fail(now, None);
            let next = b.not_before().unwrap();
            waits.push(next.duration_since(now).unwrap().as_secs());
            now = next;
        }
        assert_eq!(&waits[..4], &[60, 120, 240, 480]);
        assert_eq!(*waits.last().unwrap(), 6 * 3600);
        // Never five failures within an hour.
        let mut b = Backoff::default();
        let mut times = Vec::new();
        let mut now = t0;
        for _ in 0..8 {
            b.fail(now, None);
            times.push(now);
            now = b.not_before().unwrap();
        }
        for w in times.windows(6) {
            assert!(w[5].duration_since(w[0]).unwrap() >= Duration::from_secs(3600));
        }
        // Retry-After is honoured when longer.
        let mut b = Backoff::default();
        b.fail(t0, Some(t0 + Duration::from_secs(3600)));
        assert_eq!(b.not_before(), Some(t0 + Duration::from_secs(3600)));
        b.succeed();
        assert_eq!((b.not_before(), b.failures()), (None, 0));
    }
}
