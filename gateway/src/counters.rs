//! The gateway's message counters, read by the operator's `/metrics`.
//!
//! Plain relaxed atomics indexed by the OUCH type letter (or reject reason
//! letter): one `fetch_add` per message on the reader task or the router
//! thread, no lock, nothing allocated. Readers see a consistent-enough
//! picture for monitoring; exact counts once traffic stops.

use std::sync::atomic::{AtomicU64, Ordering};

/// A count per byte value (a message type or a reason letter).
#[derive(Debug)]
pub struct ByLetter([AtomicU64; 256]);

impl Default for ByLetter {
    fn default() -> Self {
        ByLetter(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl ByLetter {
    /// Counts one of `letter`.
    pub fn count(&self, letter: u8) {
        self.0[usize::from(letter)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every letter counted at least once, with its count, in byte order.
    pub fn nonzero(&self) -> Vec<(u8, u64)> {
        (0..=255u8)
            .filter_map(|letter| {
                let n = self.0[usize::from(letter)].load(Ordering::Relaxed);
                (n > 0).then_some((letter, n))
            })
            .collect()
    }

    /// The count of `letter`.
    pub fn get(&self, letter: u8) -> u64 {
        self.0[usize::from(letter)].load(Ordering::Relaxed)
    }
}

/// All of the gateway's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Inbound OUCH messages by type (`O`, `U`, `X`, `b`, `p`, ...),
    /// including those rejected for a bad field.
    pub messages_in: ByLetter,
    /// Outbound OUCH messages by type (`A`, `U`, `C`, `E`, `J`, `I`, ...).
    pub messages_out: ByLetter,
    /// Rejected (`J`) messages by reason letter.
    pub rejects: ByLetter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_letter() {
        let c = ByLetter::default();
        c.count(b'O');
        c.count(b'O');
        c.count(b'X');
        assert_eq!(c.nonzero(), vec![(b'O', 2), (b'X', 1)]);
        assert_eq!(c.get(b'U'), 0);
    }
}
