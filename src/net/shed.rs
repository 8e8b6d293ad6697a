//! `shed` (the CoreDNS plugin's name for the same incident: a server that cannot keep up
//! must not let its queues grow). A shard answers UDP inline, one batch at a time, so the
//! one queue that can grow is the socket's receive buffer in the kernel: at its 4 MiB and
//! 50k queries a second that is some 200 ms of waiting, answers nobody waits for. With
//! `shed`, each UDP listener of the block:
//!
//! - reads the kernel's arrival stamp of every datagram and drops, unanswered, those that
//!   waited longer than [`MAX_WAIT`]: the oldest work goes, the freshest is answered;
//! - shrinks its receive buffer while the oldest datagram of a batch waited longer than
//!   that (the buffer holds more work than the shard does in [`MAX_WAIT`]), so that the kernel turns the excess away at the door, which costs the shard
//!   nothing (reading a datagram only to drop it costs a third of answering a cheap one),
//!   and grows it back to its full size within some 60 ms once the queue drains.
//!
//! The controller is a plain type the tests step with made-up times.

use std::time::Duration;

/// A query that waited longer than this is dropped unanswered.
pub const MAX_WAIT: Duration = Duration::from_millis(5);
/// The smallest receive buffer asked for (one burst of a busy resolver still fits).
const MIN_BUFFER: usize = 64 << 10;
/// Shrink at most this often (the queue needs time to drain to show the effect)...
const SHRINK_EVERY: u64 = 5_000_000;
/// ...and grow back at most this often: doubling every 10 ms, the buffer is whole again
/// some 60 ms after a flood ends (a drained queue means the flood is over; under a flood
/// every batch is full, so this never undoes the shrinking while it lasts).
const GROW_EVERY: u64 = 10_000_000;

/// What the controller asks of the socket after a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resize {
    /// Leave the buffer.
    Keep,
    /// Ask for this many octets.
    To(usize),
}

/// The state of one UDP listener's shedding.
#[derive(Debug)]
pub struct Shedder {
    /// The buffer asked for now.
    buffer: usize,
    /// The buffer without pressure.
    full: usize,
    /// When it last changed (realtime nanoseconds).
    changed: u64,
}

impl Shedder {
    /// A listener whose receive buffer is `full` octets.
    pub fn new(full: usize) -> Shedder {
        Shedder {
            buffer: full,
            full,
            changed: 0,
        }
    }

    /// The buffer asked for now.
    pub fn buffer(&self) -> usize {
        self.buffer
    }

    /// Whether a datagram that arrived at `arrived` is too old to answer at `now` (both
    /// realtime nanoseconds; a datagram without a stamp is answered).
    pub fn stale(arrived: Option<u64>, now: u64) -> bool {
        arrived.is_some_and(|t| now.saturating_sub(t) > MAX_WAIT.as_nanos() as u64)
    }

    /// After a batch of `n` datagrams out of at most `batch`, the oldest of which arrived at
    /// `oldest`: what to do with the buffer.
    pub fn after_batch(&mut self, n: usize, batch: usize, oldest: Option<u64>, now: u64) -> Resize {
        let Some(oldest) = oldest else {
            return Resize::Keep;
        };
        let waited = now.saturating_sub(oldest);
        let since = now.saturating_sub(self.changed);
        let max = MAX_WAIT.as_nanos() as u64;
        let next = if waited > max && since >= SHRINK_EVERY {
            (self.buffer / 4 * 3).max(MIN_BUFFER)
        } else if n < batch && waited < max / 4 && since >= GROW_EVERY {
            (self.buffer * 2).min(self.full)
        } else {
            return Resize::Keep;
        };
        if next == self.buffer {
            return Resize::Keep;
        }
        self.buffer = next;
        self.changed = now;
        Resize::To(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn old_datagrams_are_stale() {
        let now = 1_000 * MS;
        assert!(!Shedder::stale(Some(now - 4 * MS), now));
        assert!(Shedder::stale(Some(now - 6 * MS), now));
        assert!(!Shedder::stale(None, now));
        // A stamp from the future (a clock step) is not stale.
        assert!(!Shedder::stale(Some(now + MS), now));
    }

    #[test]
    fn the_buffer_shrinks_under_pressure_and_grows_back_when_drained() {
        let full = 4 << 20;
        let mut s = Shedder::new(full);
        let mut now = 1_000 * MS;
        // Full batches whose oldest waited 4 ms: within the wait, nothing changes.
        assert_eq!(s.after_batch(32, 32, Some(now - 4 * MS), now), Resize::Keep);
        // Waited 6 ms: shrink, at most every 5 ms, down to the floor.
        let mut shrinks = 0;
        for _ in 0..400 {
            now += MS;
            if let Resize::To(b) = s.after_batch(32, 32, Some(now - 6 * MS), now) {
                assert!(b < full && b >= MIN_BUFFER);
                shrinks += 1;
            }
        }
        assert_eq!(s.buffer(), MIN_BUFFER);
        assert!((10..=80).contains(&shrinks), "{shrinks}");
        // A fresh queue that is not drained keeps the buffer.
        assert_eq!(s.after_batch(32, 32, Some(now), now + 100 * MS), Resize::Keep);
        // Drained: it grows back, at most every 10 ms, to its full size and no further,
        // within 100 ms of the first drained batch.
        let drained = now;
        while s.buffer() < full {
            now += MS;
            s.after_batch(3, 32, Some(now - MS / 10), now);
            assert!(
                now - drained <= 100 * MS,
                "still {} after {} ms",
                s.buffer(),
                (now - drained) / MS
            );
        }
        s.after_batch(3, 32, Some(now + 20 * MS - MS / 10), now + 20 * MS);
        assert_eq!(s.buffer(), full);
        // No stamps (shedding just turned on): nothing to go by.
        assert_eq!(s.after_batch(32, 32, None, now + 10_000 * MS), Resize::Keep);
    }
}
