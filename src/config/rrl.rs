//! `rrl`, with the syntax of the CoreDNS `rrl` plugin (an external CoreDNS plugin; its
//! README is the reference) and BIND's meaning:
//!
//! ```text
//! rrl [ZONES...] {
//!     window SECONDS
//!     ipv4-prefix-length LENGTH
//!     ipv6-prefix-length LENGTH
//!     responses-per-second ALLOWANCE
//!     nodata-per-second ALLOWANCE
//!     nxdomains-per-second ALLOWANCE
//!     referrals-per-second ALLOWANCE
//!     errors-per-second ALLOWANCE
//!     slip-ratio N
//!     requests-per-second ALLOWANCE
//!     max-table-size SIZE
//!     report-only
//! }
//! ```
//!
//! Allowances may be fractional (`0.5` is one every two seconds); 0 turns a category off;
//! the four after `responses-per-second` default to it. Defaults: window 15, prefixes 24
//! and 56, slip 0 (CoreDNS's; BIND's is 2), table 100000 accounts per shard.

use bytes::Bytes;
use domain::base::Name;

use super::args::{check_inside_block, err, zone_list};
use super::error::{ConfigError, Pos};
use super::lexer::Token;
use super::model::ServerBlock;
use super::syntax::Line;

/// Nanoseconds in a second.
const SECOND: f64 = 1e9;

/// One `rrl` directive.
#[derive(Clone, Debug, PartialEq)]
pub struct RrlConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The zones it limits (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// `window`, in nanoseconds.
    pub window: u64,
    /// `ipv4-prefix-length`.
    pub ipv4_prefix: u8,
    /// `ipv6-prefix-length`.
    pub ipv6_prefix: u8,
    /// Nanoseconds between replies of each category: responses, nodata, nxdomains,
    /// referrals, errors (the order of `dns::rrl::Category`); 0 is unlimited.
    pub intervals: [u64; 5],
    /// Nanoseconds between requests; 0 is unlimited.
    pub request_interval: u64,
    /// `slip-ratio`.
    pub slip: u8,
    /// `max-table-size`.
    pub table_size: usize,
    /// `report-only`.
    pub report_only: bool,
}

/// The allowance options, in the order of [`RrlConfig::intervals`].
const ALLOWANCES: [&str; 5] = [
    "responses-per-second",
    "nodata-per-second",
    "nxdomains-per-second",
    "referrals-per-second",
    "errors-per-second",
];

/// Reads an `rrl` line.
pub(super) fn rrl(block: &ServerBlock, line: &Line) -> Result<RrlConfig, ConfigError> {
    let zones = if line.args.is_empty() {
        block.zones()
    } else {
        let z = zone_list(&line.args)?;
        check_inside_block(block, &line.args, &z)?;
        z
    };
    let mut c = RrlConfig {
        pos: line.pos().clone(),
        zones,
        window: 15 * SECOND as u64,
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        intervals: [0; 5],
        request_interval: 0,
        slip: 0,
        table_size: 100_000,
        report_only: false,
    };
    let mut set: [Option<u64>; 5] = [None; 5];
    for o in line.block.iter().flatten() {
        let name = o.name.text.as_str();
        if name == "report-only" {
            if let Some(a) = o.args.first() {
                return Err(err(a, "rrl: report-only takes no value"));
            }
            c.report_only = true;
            continue;
        }
        let [value] = o.args.as_slice() else {
            return Err(err(&o.name, format!("rrl: {name} takes one value")));
        };
        match name {
            "window" => {
                let w = number(value, name)?;
                if w <= 0.0 || w > 3600.0 {
                    return Err(err(value, "rrl: window is from more than 0 to 3600 seconds"));
                }
                c.window = (w * SECOND) as u64;
            }
            "ipv4-prefix-length" => c.ipv4_prefix = length(value, name, 32)?,
            "ipv6-prefix-length" => c.ipv6_prefix = length(value, name, 128)?,
            "slip-ratio" => {
                c.slip = value
                    .text
                    .parse::<u8>()
                    .ok()
                    .filter(|s| *s <= 10)
                    .ok_or_else(|| err(value, "rrl: slip-ratio is a whole number from 0 to 10"))?;
            }
            "requests-per-second" => c.request_interval = interval(value, name)?,
            "max-table-size" => {
                c.table_size = value
                    .text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 100_000_000)
                    .ok_or_else(|| err(value, "rrl: max-table-size is a whole number up to 100000000"))?;
            }
            other => match ALLOWANCES.iter().position(|a| *a == other) {
                Some(i) => set[i] = Some(interval(value, name)?),
                None => {
                    return Err(err(
                        &o.name,
                        format!(
                            "unknown rrl option {other:?} (accepted: window, ipv4-prefix-length, ipv6-prefix-length, {}, slip-ratio, requests-per-second, max-table-size, report-only)",
                            ALLOWANCES.join(", ")
                        ),
                    ));
                }
            },
        }
    }
    let responses = set[0].unwrap_or(0);
    for (slot, given) in c.intervals.iter_mut().zip(set) {
        *slot = given.unwrap_or(responses);
    }
    Ok(c)
}

fn number(t: &Token, what: &str) -> Result<f64, ConfigError> {
    t.text
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| err(t, format!("rrl: {what} {:?} is not a number", t.text)))
}

/// An allowance per second as the time between two: 0 stays 0 (no limit).
fn interval(t: &Token, what: &str) -> Result<u64, ConfigError> {
    let v = number(t, what)?;
    if !(0.0..=10_000_000.0).contains(&v) {
        return Err(err(t, format!("rrl: {what} is from 0 to 10000000")));
    }
    Ok(if v == 0.0 { 0 } else { ((SECOND / v) as u64).max(1) })
}

fn length(t: &Token, what: &str, max: u8) -> Result<u8, ConfigError> {
    t.text
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=max).contains(l))
        .ok_or_else(|| err(t, format!("rrl: {what} is from 1 to {max}")))
}
