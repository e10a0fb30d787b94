//! The gateway's message counters, read by the operator's `/metrics`.
//!
//! Plain relaxed atomics indexed by the OUCH type letter (or reject reason
//! letter): one `fetch_add` per message on the reader task or the router
//! thread, no lock, nothing allocated. Readers see a consistent-enough
//! picture for monitoring; exact counts once traffic stops.
//!
//! Each counter knows its letters: a byte that is not one of them (the
//! first byte of an unknown message a client sent) is counted as
//! [`Label::Other`], so that what a client sends never becomes a label
//! value on the operator's page.

use crate::ouch::{Inbound, Outbound};
use std::sync::atomic::{AtomicU64, Ordering};

/// Reject reason letters: the engine's and the gateway's reasons are ASCII
/// letters and digits.
const REASONS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// What a count is labelled with on `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// One of the counter's known letters (an ASCII letter or digit).
    Letter(u8),
    /// Any other byte.
    Other,
}

impl Label {
    /// The label value: the letter itself, or `other`.
    pub fn text(self) -> String {
        match self {
            Label::Letter(letter) => char::from(letter).to_string(),
            Label::Other => "other".into(),
        }
    }
}

/// A count per known letter (a message type or a reason letter), and one
/// for everything else.
#[derive(Debug)]
pub struct ByLetter {
    counts: [AtomicU64; 256],
    other: AtomicU64,
    known: [bool; 256],
}

impl ByLetter {
    /// Counts of `known` letters (ASCII letters and digits only; others
    /// would not be safe label values).
    ///
    /// # Panics
    /// A known letter is not an ASCII letter or digit.
    pub fn new(known: &[u8]) -> ByLetter {
        let mut set = [false; 256];
        for &letter in known {
            assert!(letter.is_ascii_alphanumeric(), "label letter {letter:#04x}");
            set[usize::from(letter)] = true;
        }
        ByLetter { counts: std::array::from_fn(|_| AtomicU64::new(0)), other: AtomicU64::new(0), known: set }
    }

    /// Counts one of `letter` (or of [`Label::Other`] when it is not known).
    pub fn count(&self, letter: u8) {
        let n = usize::from(letter);
        if self.known[n] {
            self.counts[n].fetch_add(1, Ordering::Relaxed);
        } else {
            self.other.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every label counted at least once, with its count: letters in byte
    /// order, then [`Label::Other`].
    pub fn nonzero(&self) -> Vec<(Label, u64)> {
        let letters = (0..=255u8).filter_map(|letter| {
            let n = self.counts[usize::from(letter)].load(Ordering::Relaxed);
            (n > 0).then_some((Label::Letter(letter), n))
        });
        let other = self.other.load(Ordering::Relaxed);
        letters.chain((other > 0).then_some((Label::Other, other))).collect()
    }

    /// The count of `letter` (of [`Label::Other`] when it is not known).
    pub fn get(&self, letter: u8) -> u64 {
        let n = usize::from(letter);
        if self.known[n] { self.counts[n].load(Ordering::Relaxed) } else { self.other.load(Ordering::Relaxed) }
    }
}

/// All of the gateway's counters.
#[derive(Debug)]
pub struct Counters {
    /// Inbound OUCH messages by type (`O`, `U`, `X`, `b`, `p`, `a`; any
    /// other first byte is `other`), including those rejected for a bad field.
    pub messages_in: ByLetter,
    /// Outbound OUCH messages by type (`A`, `U`, `C`, `E`, `J`, `I`, ...).
    pub messages_out: ByLetter,
    /// Rejected (`J`) messages by reason letter.
    pub rejects: ByLetter,
    /// Failed logins (wrong password, unknown username, locked out), both ports.
    pub login_failures: AtomicU64,
    /// Connections closed for sending on past their throttle.
    pub throttle_disconnects: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            messages_in: ByLetter::new(Inbound::TYPES),
            messages_out: ByLetter::new(Outbound::TYPES),
            rejects: ByLetter::new(REASONS),
            login_failures: AtomicU64::new(0),
            throttle_disconnects: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_letter() {
        let c = ByLetter::new(b"OUX");
        c.count(b'O');
        c.count(b'O');
        c.count(b'X');
        assert_eq!(c.nonzero(), vec![(Label::Letter(b'O'), 2), (Label::Letter(b'X'), 1)]);
        assert_eq!(c.get(b'U'), 0);
    }

    #[test]
    fn unknown_bytes_count_as_other() {
        let c = Counters::default();
        for byte in [b'"', b'\n', b'\\', b'}', 0xff, b'Z', b'O'] {
            c.messages_in.count(byte);
        }
        assert_eq!(c.messages_in.nonzero(), vec![(Label::Letter(b'O'), 1), (Label::Other, 6)]);
        assert_eq!(Label::Other.text(), "other");
    }
}
