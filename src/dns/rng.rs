//! Unpredictable query IDs (RFC 5452 §9.2): bytes from the OS CSPRNG, fetched in blocks so a
//! query costs no system call.

use std::cell::RefCell;

const BLOCK: usize = 512;

/// A per-shard buffer of random bytes.
pub struct Rng {
    buf: RefCell<([u8; BLOCK], usize)>,
}

impl Default for Rng {
    fn default() -> Self {
        Rng {
            buf: RefCell::new(([0; BLOCK], BLOCK)),
        }
    }
}

impl Rng {
    /// A random 16-bit value.
    pub fn u16(&self) -> u16 {
        let mut b = self.buf.borrow_mut();
        if b.1 + 2 > BLOCK {
            // getrandom only fails when the OS has no entropy source at all; fall back to the
            // clock rather than stop answering.
            if getrandom::fill(&mut b.0).is_err() {
                let n = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                for (i, x) in b.0.iter_mut().enumerate() {
                    *x = (n >> ((i % 16) * 8)) as u8 ^ i as u8;
                }
            }
            b.1 = 0;
        }
        let i = b.1;
        b.1 += 2;
        u16::from_be_bytes([b.0[i], b.0[i + 1]])
    }

    /// A random index below `n` (for the random policy).
    pub fn below(&self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        (((u32::from(self.u16()) << 16) | u32::from(self.u16())) as usize) % n
    }
}
