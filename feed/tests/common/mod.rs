//! Helpers shared by the integration tests.
#![allow(dead_code)]

use carbonx_feed::itch::{
    AddOrder, CrossTrade, EndOfSnapshot, Header, LuldAuctionCollar, Message, OrderCancel, OrderDelete, OrderExecuted,
    OrderReplace, StockDirectory, StockTradingAction, SystemEvent, Trade,
};

/// Bytes from a hex string; whitespace is ignored.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => panic!("not a hex digit: {}", b as char),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// `CEA25   `: locate 6 in directory order (CEA, CEA21 .. CEA25, CCER).
pub const CEA25: [u8; 8] = *b"CEA25   ";
/// 09:30:00.000000123.
pub const T_OPEN: u64 = 34_200_000_000_123;

/// One message of every standard type plus `G`, with distinct field values,
/// in the table order of PROTOCOL §7.2, then `G` of §10 (`S R H J A E X D U P Q G`).
pub fn samples() -> Vec<Message> {
    [reference_data(), order_flow()].concat()
}

/// `S R H J`.
fn reference_data() -> Vec<Message> {
    let h = Header::new(6, T_OPEN);
    vec![
        SystemEvent { header: Header::new(0, 28_800_000_000_000), event_code: b'O' }.into(),
        StockDirectory::carbon(Header::new(6, 28_800_000_000_000), CEA25).into(),
        StockTradingAction { header: h, stock: CEA25, trading_state: b'H', reserved: b' ', reason: *b"OPER" }.into(),
        LuldAuctionCollar {
            header: h,
            stock: CEA25,
            reference_price: 746_300,
            upper_price: 820_900,
            lower_price: 671_700,
            extension: 0,
        }
        .into(),
    ]
}

/// `A E X D U P Q G`.
fn order_flow() -> Vec<Message> {
    let h = Header::new(6, T_OPEN);
    vec![
        AddOrder { header: h, order_ref: 1234, side: b'S', shares: 1000, stock: CEA25, price: 746_300 }.into(),
        OrderExecuted { header: h, order_ref: 1234, shares: 400, match_number: 7 }.into(),
        OrderCancel { header: h, order_ref: 1234, shares: 100 }.into(),
        OrderDelete { header: h, order_ref: 1234 }.into(),
        OrderReplace { header: h, original_ref: 1234, new_ref: 1235, shares: 600, price: 745_300 }.into(),
        Trade { header: h, order_ref: 0, side: b'B', shares: 100_000, stock: CEA25, price: 746_300, match_number: 8 }
            .into(),
        CrossTrade {
            header: Header::new(6, 54_000_000_000_000),
            shares: 0,
            stock: CEA25,
            price: 746_300,
            match_number: 0,
            cross_type: b'C',
        }
        .into(),
        EndOfSnapshot { sequence: 42 }.into(),
    ]
}

/// The encoded bytes of `message`.
pub fn encoded(message: &Message) -> Vec<u8> {
    let mut buf = [0u8; carbonx_feed::itch::MESSAGE_LEN_MAX];
    let len = message.encode(&mut buf);
    buf[..len].to_vec()
}
