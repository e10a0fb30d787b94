//! OUCH 4.2 messages and the carbon extensions (`b` block, `p` pick), byte
//! layouts exactly as PROTOCOL §3, §4 and §6 give them. Fields are carried raw (side
//! letters, display, cross type...): deciding what a value means is the
//! engine's job, in the one check order of PROTOCOL §5.2, so the codec only
//! checks the type byte and the exact length, then reads fixed offsets.
//!
//! Encoding writes into a fixed-size array and never allocates; decoding
//! never panics on any input.
//!
//! - [`inbound`]: client to gateway (Enter, Replace, Cancel, block, pick, bid).
//! - [`outbound`]: gateway to client (System Event, Accepted, Replaced, ...).

pub mod inbound;
pub mod outbound;

pub use inbound::*;
pub use outbound::*;

use thiserror::Error;

/// Why bytes are not an OUCH message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OuchError {
    /// No type byte.
    #[error("empty OUCH message")]
    Empty,
    /// The type byte is not one we accept in this direction.
    #[error("unknown OUCH message type {0:#04x}")]
    UnknownType(u8),
    /// The length does not match the type's fixed length.
    #[error("OUCH message type {kind:?} is {expected} bytes, got {actual}")]
    WrongLength {
        /// The type letter.
        kind: char,
        /// Its fixed length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
}

/// Longest OUCH message either way (Replaced, 80 bytes).
pub const MESSAGE_LEN_MAX: usize = 80;

/// Fixed-offset writer over an array.
struct W<const N: usize> {
    buf: [u8; N],
    at: usize,
}

impl<const N: usize> W<N> {
    #[inline(always)]
    fn new(kind: u8) -> Self {
        let mut buf = [b' '; N];
        buf[0] = kind;
        W { buf, at: 1 }
    }
    #[inline(always)]
    fn bytes(&mut self, field: &[u8]) -> &mut Self {
        self.buf[self.at..self.at + field.len()].copy_from_slice(field);
        self.at += field.len();
        self
    }
    #[inline(always)]
    fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }
    #[inline(always)]
    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    #[inline(always)]
    fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    #[inline(always)]
    fn done(&self) -> [u8; N] {
        debug_assert_eq!(self.at, N, "OUCH layout length");
        self.buf
    }
}

/// Fixed-offset reader over a checked array.
struct R<'a, const N: usize> {
    buf: &'a [u8; N],
    at: usize,
}

impl<'a, const N: usize> R<'a, N> {
    fn new(bytes: &'a [u8], kind: u8) -> Result<Self, OuchError> {
        let buf: &[u8; N] = bytes.try_into().map_err(|_| OuchError::WrongLength {
            kind: char::from(kind),
            expected: N,
            actual: bytes.len(),
        })?;
        Ok(R { buf, at: 1 })
    }
    fn arr<const M: usize>(&mut self) -> [u8; M] {
        let mut out = [0; M];
        out.copy_from_slice(&self.buf[self.at..self.at + M]);
        self.at += M;
        out
    }
    fn u8(&mut self) -> u8 {
        self.arr::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.arr())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.arr())
    }
}

/// `text` left-justified in an `N`-byte space-padded field, cut to fit.
pub fn pad<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [b' '; N];
    let len = text.len().min(N);
    field[..len].copy_from_slice(&text.as_bytes()[..len]);
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> [u8; 14] {
        carbonx_soup::packet::alpha(text).unwrap()
    }

    /// Concatenates hand-written fields into the expected wire bytes.
    fn wire(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn enter() -> EnterOrder {
        EnterOrder::limit("ORD1", b'B', 10, "CEA", 746_300, "0001")
    }

    #[test]
    fn enter_order_by_hand() {
        let expected = wire(&[
            b"O",
            b"ORD1          ",
            b"B",
            &[0, 0, 0, 10],
            b"CEA     ",
            &746_300u32.to_be_bytes(),
            &99_999u32.to_be_bytes(),
            b"0001",
            b"YAN",
            &[0, 0, 0, 0],
            b"NR",
        ]);
        assert_eq!(expected.len(), 49);
        assert_eq!(enter().encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Enter(enter())));
    }

    #[test]
    fn replace_cancel_block_pick_by_hand() {
        let replace = ReplaceOrder {
            existing: token("ORD1"),
            replacement: token("ORD2"),
            shares: 5,
            price: 740_000,
            tif: 99_999,
            display: b'Y',
            iso: b'N',
            min_qty: 0,
        };
        let expected = wire(&[
            b"U",
            b"ORD1          ",
            b"ORD2          ",
            &[0, 0, 0, 5],
            &740_000u32.to_be_bytes(),
            &99_999u32.to_be_bytes(),
            b"YN",
            &[0; 4],
        ]);
        assert_eq!(replace.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Replace(replace)));

        let cancel = CancelOrder { token: token("ORD2"), shares: 0 };
        let expected = wire(&[b"X", b"ORD2          ", &[0; 4]]);
        assert_eq!(cancel.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Cancel(cancel)));

        let block = EnterBlock {
            token: token("BLK1"),
            side: b'S',
            shares: 100_000,
            stock: *b"CEA23   ",
            price: 800_000,
            account: *b"0002",
            counterparty: *b"0341",
            deal_id: *b"DEAL0001",
        };
        let expected = wire(&[
            b"b",
            b"BLK1          ",
            b"S",
            &100_000u32.to_be_bytes(),
            b"CEA23   ",
            &800_000u32.to_be_bytes(),
            b"0002",
            b"0341",
            b"DEAL0001",
        ]);
        assert_eq!(block.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Block(block)));

        let pick = PickOrder {
            token: token("PK1"),
            side: b'B',
            shares: 7,
            stock: *b"CCER    ",
            account: *b"0003",
            target: 99,
        };
        let expected =
            wire(&[b"p", b"PK1           ", b"B", &[0, 0, 0, 7], b"CCER    ", b"0003", &99u64.to_be_bytes()]);
        assert_eq!(pick.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Pick(pick)));
    }

    #[test]
    fn auction_bid_by_hand() {
        let bid = AuctionBid {
            token: token("BID1"),
            shares: 5_000,
            stock: *b"CEA     ",
            price: 760_000,
            account: *b"0007",
            auction: *b"AUC00001",
        };
        let expected = wire(&[
            b"a",
            b"BID1          ",
            &5_000u32.to_be_bytes(),
            b"CEA     ",
            &760_000u32.to_be_bytes(),
            b"0007",
            b"AUC00001",
        ]);
        assert_eq!(expected.len(), AuctionBid::LEN);
        assert_eq!(bid.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Bid(bid)));
    }

    fn accepted() -> Accepted {
        Accepted {
            timestamp: 36_000_000_000_000,
            token: token("ORD1"),
            side: b'B',
            shares: 10,
            stock: *b"CEA     ",
            price: 746_300,
            tif: 99_999,
            firm: *b"0001",
            display: b'Y',
            order_ref: 7,
            capacity: b'A',
            iso: b'N',
            min_qty: 0,
            cross_type: b'N',
            state: b'L',
            bbo_weight: b' ',
        }
    }

    #[test]
    fn accepted_and_replaced_by_hand() {
        let ts = 36_000_000_000_000u64.to_be_bytes();
        let first_65 = wire(&[
            b"A",
            &ts,
            b"ORD1          ",
            b"B",
            &[0, 0, 0, 10],
            b"CEA     ",
            &746_300u32.to_be_bytes(),
            &99_999u32.to_be_bytes(),
            b"0001",
            b"Y",
            &7u64.to_be_bytes(),
            b"AN",
            &[0; 4],
            b"NL",
        ]);
        let expected = wire(&[&first_65, b" "]);
        let mut out = Vec::new();
        Outbound::Accepted(accepted()).encode_into(&mut out);
        assert_eq!(out, expected);
        assert_eq!(Outbound::decode(&out), Ok(Outbound::Accepted(accepted())));

        let replaced = Replaced { order: accepted(), previous_token: token("ORD0") };
        let mut expected = wire(&[&first_65, b"ORD0          ", b" "]);
        expected[0] = b'U';
        let mut out = Vec::new();
        Outbound::Replaced(replaced).encode_into(&mut out);
        assert_eq!(out, expected);
        assert_eq!(Outbound::decode(&out), Ok(Outbound::Replaced(replaced)));
    }

    #[test]
    fn small_outbound_messages_by_hand() {
        let ts = 5u64.to_be_bytes();
        let t = token("T1");
        let cases = [
            (Outbound::SystemEvent { timestamp: 5, code: b'S' }, wire(&[b"S", &ts, b"S"])),
            (
                Outbound::Canceled { timestamp: 5, token: t, decrement: 3, reason: b'U' },
                wire(&[b"C", &ts, b"T1            ", &[0, 0, 0, 3], b"U"]),
            ),
            (
                Outbound::Executed(Executed {
                    timestamp: 5,
                    token: t,
                    shares: 4,
                    price: 746_300,
                    liquidity: b'R',
                    match_number: 11,
                }),
                wire(&[
                    b"E",
                    &ts,
                    b"T1            ",
                    &[0, 0, 0, 4],
                    &746_300u32.to_be_bytes(),
                    b"R",
                    &11u64.to_be_bytes(),
                ]),
            ),
            (Outbound::Rejected { timestamp: 5, token: t, reason: b'K' }, wire(&[b"J", &ts, b"T1            ", b"K"])),
            (Outbound::CancelReject { timestamp: 5, token: t }, wire(&[b"I", &ts, b"T1            "])),
        ];
        for ((message, expected), len) in cases.into_iter().zip([10, 28, 40, 24, 23]) {
            assert_eq!(expected.len(), len, "PROTOCOL §4 length of {message:?}");
            let mut out = Vec::new();
            message.encode_into(&mut out);
            assert_eq!(out, expected, "{message:?}");
            assert_eq!(Outbound::decode(&out), Ok(message));
        }
    }

    #[test]
    fn bad_lengths_and_types_are_errors_not_panics() {
        let good = enter().encode();
        assert!(matches!(Inbound::decode(&good[..48]), Err(OuchError::WrongLength { expected: 49, .. })));
        assert_eq!(Inbound::decode(&[]), Err(OuchError::Empty));
        assert_eq!(Inbound::decode(b"Q"), Err(OuchError::UnknownType(b'Q')));
        for len in 0..100 {
            for kind in [b'O', b'U', b'X', b'b', b'p', b'a', b'A', b'E', b'C', b'J', b'I', b'S'] {
                let mut bytes = vec![0xA5; len];
                if let Some(first) = bytes.first_mut() {
                    *first = kind;
                }
                let _ = Inbound::decode(&bytes);
                let _ = Outbound::decode(&bytes);
            }
        }
    }
}
