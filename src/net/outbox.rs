//! The replies of one stream connection waiting to be written. The reader answers inline and
//! forwarding tasks answer later, both into the outbox; one writer drains it. The reader waits
//! while the outbox is full or too many forwarded queries are open (backpressure); the writer
//! ends once the reader has stopped and every forwarded query has its reply.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::stream::StreamWrite;

/// Octets of replies queued before the reader waits for the writer.
pub const MAX_QUEUED: usize = 128 * 1024;
/// Forwarded queries open per connection before the reader waits for their replies.
pub const MAX_OPEN_FORWARDS: usize = 256;

/// Shared by a connection's reader, its forwarding tasks and its writer.
#[derive(Default)]
pub struct Outbox {
    queued: RefCell<Vec<u8>>,
    open_forwards: Cell<usize>,
    reader_done: Cell<bool>,
    failed: Cell<bool>,
    writer: RefCell<Option<Waker>>,
    reader: RefCell<Option<Waker>>,
}

impl Outbox {
    /// Queues one reply with its 2-byte length prefix (RFC 1035 §4.2.2).
    pub fn push(&self, reply: &[u8]) {
        let n = reply.len().min(usize::from(u16::MAX));
        let mut q = self.queued.borrow_mut();
        q.extend_from_slice(&(n as u16).to_be_bytes());
        q.extend_from_slice(&reply[..n]);
        drop(q);
        wake(&self.writer);
    }

    /// Counts a forwarded query until the returned guard drops.
    pub fn forward_opened(self: &std::rc::Rc<Self>) -> ForwardGuard {
        self.open_forwards.set(self.open_forwards.get() + 1);
        ForwardGuard(self.clone())
    }

    /// The reader reads no more; the writer finishes once forwarded replies are in.
    pub fn reader_done(&self) {
        self.reader_done.set(true);
        wake(&self.writer);
    }

    /// Waits until the reader may go on reading: room in the queue and few enough open
    /// forwards. `false`: the writer failed.
    pub async fn room(&self) -> bool {
        poll_fn(|cx| {
            if self.failed.get() {
                return Poll::Ready(false);
            }
            if self.queued.borrow().len() < MAX_QUEUED && self.open_forwards.get() < MAX_OPEN_FORWARDS {
                return Poll::Ready(true);
            }
            *self.reader.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Resolves once the writer fails (for the reader to stop waiting on a read).
    pub async fn writer_failed(&self) {
        poll_fn(|cx| {
            if self.failed.get() {
                return Poll::Ready(());
            }
            *self.reader.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Writes queued replies until the reader is done and no forwarded query is open; each
    /// batch must be written within `timeout`. `Err(true)`: timed out; `Err(false)`: I/O error.
    pub async fn drain<W: StreamWrite>(&self, w: &mut W, timeout: Duration) -> Result<(), bool> {
        let mut spare = Vec::new();
        loop {
            let more = poll_fn(|cx| {
                if !self.queued.borrow().is_empty() {
                    return Poll::Ready(true);
                }
                if self.reader_done.get() && self.open_forwards.get() == 0 {
                    return Poll::Ready(false);
                }
                *self.writer.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            if !more {
                return Ok(());
            }
            let mut batch = std::mem::replace(&mut *self.queued.borrow_mut(), spare);
            wake(&self.reader);
            let failure = match monoio::time::timeout(timeout, w.write_all(batch)).await {
                Err(_) => true,
                Ok((Err(_), _)) => false,
                Ok((Ok(()), b)) => {
                    batch = b;
                    batch.clear();
                    spare = batch;
                    continue;
                }
            };
            self.failed.set(true);
            wake(&self.reader);
            return Err(failure);
        }
    }
}

/// Ends a forwarded query's count.
pub struct ForwardGuard(std::rc::Rc<Outbox>);

impl Drop for ForwardGuard {
    fn drop(&mut self) {
        self.0.open_forwards.set(self.0.open_forwards.get().saturating_sub(1));
        wake(&self.0.reader);
        wake(&self.0.writer);
    }
}

fn wake(slot: &RefCell<Option<Waker>>) {
    if let Some(w) = slot.borrow_mut().take() {
        w.wake();
    }
}
