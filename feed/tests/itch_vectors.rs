//! Hand-built ITCH 5.0 byte vectors, written field by field from Nasdaq's
//! TotalView-ITCH 5.0 specification (not produced by our encoder): each
//! decodes to the expected fields and our encoder reproduces it exactly.

mod common;

use carbonx_feed::itch::{
    AddOrder, CrossTrade, DecodeError, EndOfSnapshot, Header, LuldAuctionCollar, Message, OrderCancel, OrderDelete,
    OrderExecuted, OrderReplace, StockDirectory, StockTradingAction, SystemEvent, TIMESTAMP_MAX, Trade,
};
use common::{CEA25, T_OPEN, hex};

/// `wire` decodes to `expected`, and encoding `expected` gives `wire` back.
fn round_trip(wire: &[u8], expected: Message) {
    assert_eq!(wire.len(), expected.wire_len(), "vector length");
    assert_eq!(Message::decode(wire), Ok(expected));
    let mut buf = [0xAAu8; 64];
    let len = expected.encode(&mut buf);
    assert_eq!(&buf[..len], wire);
    assert!(buf[len..].iter().all(|&b| b == 0xAA), "wrote past the message");
}

/// Header of the vectors: locate 6 (CEA25), tracking 0, 09:30:00.000000123.
const HEADER_HEX: &str = "0006 0000 1f1aced9f07b";

#[test]
fn system_event_s() {
    let wire = hex(concat!(
        "53",           // type S
        "0000",         // stock locate 0 (system message)
        "0000",         // tracking number 0
        "1a3185c50000", // timestamp 28_800_000_000_000 ns = 08:00:00
        "4f",           // event code O: start of messages
    ));
    let m = SystemEvent { header: Header::new(0, 28_800_000_000_000), event_code: b'O' };
    assert_eq!(SystemEvent::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn stock_directory_r() {
    let wire = hex(concat!(
        "52",               // type R
        "0006 0000",        // locate 6, tracking 0
        "1a3185c50000",     // 08:00:00
        "4345413235202020", // stock "CEA25   "
        "20",               // market category: blank (not available)
        "20",               // financial status indicator: blank (not available)
        "00000001",         // round lot size 1
        "4e",               // round lots only N
        "51",               // issue classification Q (other securities)
        "5a20",             // issue sub-type "Z " (not applicable)
        "50",               // authenticity P (live/production)
        "20",               // short sale threshold indicator: blank
        "20",               // IPO flag: blank
        "20",               // LULD reference price tier: blank
        "4e",               // ETP flag N
        "00000000",         // ETP leverage factor 0
        "4e",               // inverse indicator N
    ));
    let m = StockDirectory::carbon(Header::new(6, 28_800_000_000_000), CEA25);
    assert_eq!(StockDirectory::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn stock_trading_action_h() {
    let wire = hex(&format!(
        "48 {HEADER_HEX} {} {} {} {}",
        "4345413235202020", // stock "CEA25   "
        "48",               // trading state H: halted
        "20",               // reserved
        "4f504552",         // reason "OPER"
    ));
    let m = StockTradingAction {
        header: Header::new(6, T_OPEN),
        stock: CEA25,
        trading_state: b'H',
        reserved: b' ',
        reason: *b"OPER",
    };
    assert_eq!(StockTradingAction::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn luld_auction_collar_j() {
    let wire = hex(&format!(
        "4a {HEADER_HEX} {} {} {} {} {}",
        "4345413235202020", // stock
        "000b633c",         // reference price 74.6300
        "000c86a4",         // upper 82.0900
        "000a3fd4",         // lower 67.1700
        "00000000",         // extension 0
    ));
    let m = LuldAuctionCollar {
        header: Header::new(6, T_OPEN),
        stock: CEA25,
        reference_price: 746_300,
        upper_price: 820_900,
        lower_price: 671_700,
        extension: 0,
    };
    assert_eq!(LuldAuctionCollar::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn add_order_a() {
    let wire = hex(&format!(
        "41 {HEADER_HEX} {} {} {} {} {}",
        "00000000000004d2", // order reference 1234
        "53",               // S: sell
        "000003e8",         // 1000 shares
        "4345413235202020", // stock
        "000b633c",         // price 74.6300
    ));
    let m = AddOrder {
        header: Header::new(6, T_OPEN),
        order_ref: 1234,
        side: b'S',
        shares: 1000,
        stock: CEA25,
        price: 746_300,
    };
    assert_eq!(AddOrder::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn order_executed_e() {
    let wire = hex(&format!(
        "45 {HEADER_HEX} {} {} {}",
        "00000000000004d2", // order reference 1234
        "00000190",         // 400 executed
        "0000000000000007", // match number 7
    ));
    let m = OrderExecuted { header: Header::new(6, T_OPEN), order_ref: 1234, shares: 400, match_number: 7 };
    assert_eq!(OrderExecuted::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn order_cancel_x() {
    let wire = hex(&format!(
        "58 {HEADER_HEX} {} {}",
        "00000000000004d2", // order reference 1234
        "00000064",         // 100 cancelled
    ));
    let m = OrderCancel { header: Header::new(6, T_OPEN), order_ref: 1234, shares: 100 };
    assert_eq!(OrderCancel::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn order_delete_d() {
    let wire = hex(&format!("44 {HEADER_HEX} 00000000000004d2"));
    let m = OrderDelete { header: Header::new(6, T_OPEN), order_ref: 1234 };
    assert_eq!(OrderDelete::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn order_replace_u() {
    let wire = hex(&format!(
        "55 {HEADER_HEX} {} {} {} {}",
        "00000000000004d2", // original reference 1234
        "00000000000004d3", // new reference 1235
        "00000258",         // 600 shares
        "000b5f54",         // price 74.5300
    ));
    let m =
        OrderReplace { header: Header::new(6, T_OPEN), original_ref: 1234, new_ref: 1235, shares: 600, price: 745_300 };
    assert_eq!(OrderReplace::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn trade_p() {
    let wire = hex(&format!(
        "50 {HEADER_HEX} {} {} {} {} {} {}",
        "0000000000000000", // order reference 0 (block trade)
        "42",               // B
        "000186a0",         // 100,000 shares
        "4345413235202020", // stock
        "000b633c",         // price 74.6300
        "0000000000000008", // match number 8
    ));
    let m = Trade {
        header: Header::new(6, T_OPEN),
        order_ref: 0,
        side: b'B',
        shares: 100_000,
        stock: CEA25,
        price: 746_300,
        match_number: 8,
    };
    assert_eq!(Trade::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn cross_trade_q() {
    let wire = hex(concat!(
        "51",               // type Q
        "0006 0000",        // locate 6, tracking 0
        "311cdad16000",     // 54_000_000_000_000 ns = 15:00:00
        "0000000000000000", // shares (8 bytes) 0
        "4345413235202020", // stock
        "000b633c",         // cross price 74.6300 (official close)
        "0000000000000000", // match number 0
        "43",               // cross type C: closing
    ));
    let m = CrossTrade {
        header: Header::new(6, 54_000_000_000_000),
        shares: 0,
        stock: CEA25,
        price: 746_300,
        match_number: 0,
        cross_type: b'C',
    };
    assert_eq!(CrossTrade::decode(&wire), Ok(m));
    round_trip(&wire, m.into());
}

#[test]
fn cross_trade_shares_use_all_eight_bytes() {
    let wire = hex(concat!(
        "51 0006 0000 311cdad16000",
        "0000000100000002", // shares 2^32 + 2
        "4345413235202020 000b633c 0000000000000009 49",
    ));
    let m = CrossTrade::decode(&wire).unwrap();
    assert_eq!(m.shares, (1 << 32) + 2);
    assert_eq!(m.match_number, 9);
    assert_eq!(m.cross_type, b'I');
}

#[test]
fn end_of_snapshot_g() {
    // type G, then "42" right-justified and space-padded in 20 bytes
    let wire = hex("47 2020202020202020202020202020202020203432");
    round_trip(&wire, EndOfSnapshot { sequence: 42 }.into());
    assert_eq!(&wire[1..], b"                  42");
}

#[test]
fn end_of_snapshot_extremes() {
    let mut max = b"G".to_vec();
    max.extend_from_slice(b"18446744073709551615");
    round_trip(&max, EndOfSnapshot { sequence: u64::MAX }.into());

    let mut zero = b"G".to_vec();
    zero.extend_from_slice(b"                   0");
    round_trip(&zero, EndOfSnapshot { sequence: 0 }.into());
}

#[test]
fn end_of_snapshot_parses_leniently_and_rejects_garbage() {
    let parse = |field: &[u8; 20]| {
        let mut wire = b"G".to_vec();
        wire.extend_from_slice(field);
        EndOfSnapshot::decode(&wire).map(|g| g.sequence)
    };
    // Spaces on either side and leading zeros are accepted (PROTOCOL §1).
    assert_eq!(parse(b"42                  "), Ok(42));
    assert_eq!(parse(b"   42               "), Ok(42));
    assert_eq!(parse(b"00000000000000000042"), Ok(42));
    let bad = Err(DecodeError::BadSequenceNumber);
    assert_eq!(parse(b"                    "), bad);
    assert_eq!(parse(b"                 4 2"), bad);
    assert_eq!(parse(b"                 -42"), bad);
    assert_eq!(parse(b"               0x2a "), bad);
    assert_eq!(parse(b"18446744073709551616"), bad);
    assert_eq!(parse(b"99999999999999999999"), bad);
}

#[test]
fn decode_errors_are_typed() {
    assert_eq!(Message::decode(&[]), Err(DecodeError::Empty));
    assert_eq!(Message::decode(b"Z"), Err(DecodeError::UnknownType(b'Z')));
    // `F` (add order with MPID) is ITCH but not on our feed.
    assert_eq!(Message::decode(&[b'F'; 40]), Err(DecodeError::UnknownType(b'F')));
    let add = common::encoded(&common::samples()[4]);
    assert_eq!(Message::decode(&add[..35]), Err(DecodeError::WrongLength { kind: b'A', expected: 36, actual: 35 }));
    let mut long = add.clone();
    long.push(0);
    assert_eq!(AddOrder::decode(&long), Err(DecodeError::WrongLength { kind: b'A', expected: 36, actual: 37 }));
    assert_eq!(OrderDelete::decode(&add), Err(DecodeError::WrongType { expected: b'D', actual: b'A' }));
    assert_eq!(Message::decode(b"G42"), Err(DecodeError::WrongLength { kind: b'G', expected: 21, actual: 3 }));
}

#[test]
fn every_sample_round_trips_through_the_enum() {
    for m in common::samples() {
        let bytes = common::encoded(&m);
        assert_eq!(bytes[0], m.message_type());
        assert_eq!(bytes.len(), m.wire_len());
        assert_eq!(Message::decode(&bytes), Ok(m));
    }
}

#[test]
fn largest_timestamp_goes_on_the_wire_as_48_bits() {
    let m = OrderDelete { header: Header::new(1, TIMESTAMP_MAX), order_ref: 1 };
    let mut buf = [0u8; OrderDelete::LEN];
    m.encode(&mut buf);
    assert_eq!(&buf[5..11], &[0xff; 6]);
    assert_eq!(OrderDelete::decode(&buf), Ok(m));
}

#[test]
#[should_panic(expected = "does not fit 48 bits")]
fn encoding_a_timestamp_above_48_bits_is_a_bug() {
    let m = OrderDelete { header: Header::new(1, TIMESTAMP_MAX + 1), order_ref: 1 };
    m.encode(&mut [0u8; 64]);
}

#[test]
#[should_panic(expected = "message needs 36")]
fn encoding_into_a_short_buffer_is_a_bug() {
    let m = common::samples()[4];
    m.encode(&mut [0u8; 35]);
}

#[test]
fn alpha_pads_and_rejects() {
    use carbonx_feed::itch::alpha;
    assert_eq!(alpha::<8>("CEA25"), Some(CEA25));
    assert_eq!(alpha::<8>("CEA25XXXX"), None);
    assert_eq!(alpha::<8>("碳"), None);
    assert_eq!(alpha::<10>("CX20250102"), Some(*b"CX20250102"));
}
