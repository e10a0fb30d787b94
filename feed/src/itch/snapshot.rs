//! End of Snapshot `G`, our extension: where the TCP feed resumes after
//! a snapshot.

use super::DecodeError;
use super::wire::{check, out};

// ---- G End of Snapshot (21, ours) ----

/// `G` End of Snapshot (our extension; no ITCH header): the first feed
/// sequence number NOT reflected in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndOfSnapshot {
    /// First feed sequence number the snapshot does not reflect.
    pub sequence: u64,
}

impl EndOfSnapshot {
    /// The message type byte.
    pub const TYPE: u8 = b'G';
    /// Length on the wire: type 1 + sequence number 20A.
    pub const LEN: usize = 21;

    /// Writes `G` and the sequence number as ASCII decimal, right-justified
    /// and space-padded in 20 bytes, into the first [`Self::LEN`] bytes of
    /// `buf`; returns [`Self::LEN`]. Never allocates.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::LEN`] (a caller bug).
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) -> usize {
        let o = out::<21>(buf);
        o[0] = Self::TYPE;
        let digits = &mut o[1..];
        digits.fill(b' ');
        let mut rest = self.sequence;
        // u64::MAX has 20 digits, so the field always holds the number.
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        Self::LEN
    }

    /// Decodes an End of Snapshot. Like every numeric ASCII field of ours
    /// (PROTOCOL §1), the number is parsed leniently: spaces on
    /// either side are stripped; leading zeros are accepted.
    ///
    /// # Errors
    /// [`DecodeError`] if `bytes` is empty, has another type byte, is not
    /// exactly [`Self::LEN`] bytes, or the field is blank, not decimal or
    /// above `u64::MAX`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b = check::<21>(bytes, Self::TYPE)?;
        let mut field = &b[1..];
        while let [b' ', rest @ ..] = field {
            field = rest;
        }
        while let [rest @ .., b' '] = field {
            field = rest;
        }
        if field.is_empty() {
            return Err(DecodeError::BadSequenceNumber);
        }
        let mut sequence: u64 = 0;
        for &c in field {
            if !c.is_ascii_digit() {
                return Err(DecodeError::BadSequenceNumber);
            }
            sequence = sequence
                .checked_mul(10)
                .and_then(|s| s.checked_add(u64::from(c - b'0')))
                .ok_or(DecodeError::BadSequenceNumber)?;
        }
        Ok(Self { sequence })
    }
}
