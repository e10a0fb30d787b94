//! Fixed-offset field helpers (inlined; offsets are constants at every
//! call) and the `fixed_codec!` macro that gives every fixed-length
//! message type its `TYPE`, `LEN`, `encode` and `decode`.

use super::{DecodeError, Header, TIMESTAMP_MAX};

/// The first `N` bytes of `buf` as an array.
///
/// # Panics
/// If `buf` is shorter than `N`: a caller bug (buffers are sized by `LEN`).
#[inline]
pub(super) fn out<const N: usize>(buf: &mut [u8]) -> &mut [u8; N] {
    let len = buf.len();
    match buf.first_chunk_mut::<N>() {
        Some(out) => out,
        None => panic!("ITCH encode buffer of {len} bytes, message needs {N}"),
    }
}

/// Checks the type byte, then the exact length.
#[inline]
pub(super) fn check<const N: usize>(bytes: &[u8], kind: u8) -> Result<&[u8; N], DecodeError> {
    let Some(&actual) = bytes.first() else {
        return Err(DecodeError::Empty);
    };
    if actual != kind {
        return Err(DecodeError::WrongType { expected: kind, actual });
    }
    bytes.try_into().map_err(|_| DecodeError::WrongLength { kind, expected: N, actual: bytes.len() })
}

#[inline]
pub(super) fn put<const N: usize>(o: &mut [u8; N], at: usize, field: &[u8]) {
    o[at..at + field.len()].copy_from_slice(field);
}

#[inline]
pub(super) fn get<const N: usize, const M: usize>(b: &[u8; N], at: usize) -> [u8; M] {
    let mut field = [0; M];
    field.copy_from_slice(&b[at..at + M]);
    field
}

#[inline]
pub(super) fn get_u16<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes(get(b, at))
}

#[inline]
pub(super) fn get_u32<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    u32::from_be_bytes(get(b, at))
}

#[inline]
pub(super) fn get_u64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    u64::from_be_bytes(get(b, at))
}

#[inline]
pub(super) fn put_header<const N: usize>(o: &mut [u8; N], kind: u8, h: &Header) {
    assert!(h.timestamp <= TIMESTAMP_MAX, "ITCH timestamp {} does not fit 48 bits", h.timestamp);
    o[0] = kind;
    put(o, 1, &h.locate.to_be_bytes());
    put(o, 3, &h.tracking.to_be_bytes());
    put(o, 5, &h.timestamp.to_be_bytes()[2..]);
}

#[inline]
pub(super) fn get_header<const N: usize>(b: &[u8; N]) -> Header {
    let mut ts = [0; 8];
    ts[2..].copy_from_slice(&b[5..11]);
    Header { locate: get_u16(b, 1), tracking: get_u16(b, 3), timestamp: u64::from_be_bytes(ts) }
}

/// Generates `TYPE`, `LEN`, `encode` and `decode` from the type's private
/// `write(&self, &mut [u8; LEN])` and `read(&[u8; LEN]) -> Self`.
macro_rules! fixed_codec {
    ($name:ident, $kind:literal, $len:literal) => {
        impl $name {
            /// The message type byte.
            pub const TYPE: u8 = $kind;
            /// Length on the wire, type byte included.
            pub const LEN: usize = $len;

            /// Writes the message into the first [`Self::LEN`] bytes of `buf`
            /// and returns [`Self::LEN`]. Never allocates.
            ///
            /// # Panics
            /// If `buf` is shorter than [`Self::LEN`], or the timestamp exceeds
            /// [`TIMESTAMP_MAX`](crate::itch::TIMESTAMP_MAX): both are caller bugs.
            #[inline]
            pub fn encode(&self, buf: &mut [u8]) -> usize {
                self.write(out::<$len>(buf));
                $len
            }

            /// Decodes exactly one message of this type (check-then-parse).
            ///
            /// # Errors
            /// [`DecodeError`] if `bytes` is empty, has another type byte, or
            /// is not exactly [`Self::LEN`] bytes long.
            #[inline]
            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                check::<$len>(bytes, $kind).map(Self::read)
            }
        }
    };
}

pub(super) use fixed_codec;
