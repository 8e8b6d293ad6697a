//! The shard's side of `rrl` (`dns::rrl`): its tables, one per `rrl` directive, and the two
//! stages a UDP query meets when its block has one: the request stage (before any work,
//! `requests-per-second`) and the response stage (on the written reply). TCP, DoT and DoH
//! never come here. A request whose DNS Cookie checked has proved its source address
//! (RFC 7873 §5.2.5) and is never limited.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::dns::cookie::Verdict as CookieVerdict;
use crate::dns::rrl::{self, Limits, Nanos, Table, Verdict};
use crate::telemetry::stats::ShardStats;

/// What `ShardStats::rrl` counts, by index.
pub mod counted {
    /// Requests dropped by `requests-per-second`.
    pub const REQUEST_DROPPED: usize = 0;
    /// Replies dropped.
    pub const DROPPED: usize = 1;
    /// Replies sent truncated and empty instead.
    pub const SLIPPED: usize = 2;
    /// Replies sent as BADCOOKIE instead (the request had a cookie that did not check).
    pub const BAD_COOKIE: usize = 3;
    /// Replies (and requests) over the limit but sent, `report-only`.
    pub const REPORTED: usize = 4;
}

/// The tables of one shard.
pub(crate) struct Limiter {
    epoch: Instant,
    tables: RefCell<Vec<(Arc<Limits>, Table)>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            epoch: Instant::now(),
            tables: RefCell::default(),
        }
    }
}

/// Whether a request's cookie exempts it.
pub(crate) fn exempt(cookie: Option<CookieVerdict>) -> bool {
    cookie == Some(CookieVerdict::Valid)
}

impl Limiter {
    /// Runs `f` on the table of `limits`. A reload that keeps a directive as it was keeps
    /// its table (and the accounts in it); a new one is allocated here, once.
    fn with<R>(&self, limits: &Arc<Limits>, f: impl FnOnce(&mut Table, &Limits) -> R) -> R {
        let mut tables = self.tables.borrow_mut();
        let i = match tables.iter().position(|(l, _)| Arc::ptr_eq(l, limits)) {
            Some(i) => i,
            None => match tables.iter().position(|(l, _)| **l == **limits) {
                Some(i) => {
                    tables[i].0 = limits.clone();
                    i
                }
                None => {
                    // Tables of directives no snapshot holds any more go now.
                    tables.retain(|(l, _)| Arc::strong_count(l) > 1);
                    tables.push((limits.clone(), Table::new(limits.table_size)));
                    tables.len() - 1
                }
            },
        };
        let (l, t) = &mut tables[i];
        f(t, l)
    }

    fn nanos(&self, at: Instant) -> Nanos {
        // Never 0: the table takes 0 for "never".
        at.duration_since(self.epoch).as_nanos() as Nanos + 1
    }

    /// The request stage: false when `requests-per-second` drops the request.
    pub(crate) fn request(
        &self,
        limits: &Arc<Limits>,
        client: IpAddr,
        query: &[u8],
        at: Instant,
        stats: &ShardStats,
    ) -> bool {
        if limits.request_interval == 0 {
            return true;
        }
        let now = self.nanos(at);
        match self.with(limits, |t, l| t.request(l, client, query, now)) {
            Verdict::Send => true,
            _ if limits.report_only => {
                stats.rrl[counted::REPORTED].incr();
                true
            }
            _ => {
                stats.rrl[counted::REQUEST_DROPPED].incr();
                false
            }
        }
    }

    /// The response stage: false when the reply in `out` is not to be sent; a reply that
    /// slips is rewritten in place (truncated and empty, or BADCOOKIE when the request had
    /// a cookie that did not check).
    pub(crate) fn response(
        &self,
        limits: &Arc<Limits>,
        client: IpAddr,
        cookie: Option<CookieVerdict>,
        out: &mut Vec<u8>,
        at: Instant,
        stats: &ShardStats,
    ) -> bool {
        let now = self.nanos(at);
        let verdict = self.with(limits, |t, l| t.reply(l, client, out, now));
        match verdict {
            Verdict::Send => true,
            _ if limits.report_only => {
                stats.rrl[counted::REPORTED].incr();
                true
            }
            Verdict::Drop => {
                stats.rrl[counted::DROPPED].incr();
                false
            }
            Verdict::Slip => {
                if cookie.is_some() {
                    stats.rrl[counted::BAD_COOKIE].incr();
                    rrl::bad_cookie(out);
                } else {
                    stats.rrl[counted::SLIPPED].incr();
                    rrl::slip(out);
                }
                true
            }
        }
    }
}
