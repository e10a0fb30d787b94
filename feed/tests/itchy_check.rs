//! Our encoded bytes decoded by the independent `itchy` crate (a nom-based
//! ITCH 5.0 parser).
//!
//! `itchy` reads the Nasdaq file framing: `u16 length` + message, which is
//! also the MoldUDP64 block framing. It ignores the length and consumes
//! exactly the bytes its own layout defines, so streaming every type back to
//! back also proves our lengths agree with its layouts (a disagreement would
//! desynchronise every later message).
//!
//! It supports all eleven standard types we send (`S R H J A E X D U P Q`).
//! It cannot parse our End of Snapshot `G`: it is not an ITCH 5.0 message
//! and `itchy` hits `unreachable!()` on unknown type bytes, so `G` is only
//! checked by the hand-built vectors.

mod common;

use carbonx_feed::itch::{self, AddOrder, CrossTrade, Header, OrderReplace, TIMESTAMP_MAX, Trade};
use itchy::{
    ArrayString, Body, CrossType, EventCode, FinancialStatus, IssueClassification, IssueSubType, LuldRefPriceTier,
    MarketCategory, Side, StockDirectory, TradingState,
};
use proptest::prelude::*;

fn stock(text: &str) -> ArrayString<8> {
    ArrayString::from(text).unwrap()
}

/// `messages` framed as `u16 length` + message, parsed by itchy.
fn parse_with_itchy(messages: &[itch::Message]) -> Vec<itchy::Message> {
    let mut stream = Vec::new();
    for m in messages {
        let bytes = common::encoded(m);
        stream.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_be_bytes());
        stream.extend_from_slice(&bytes);
    }
    itchy::MessageStream::from_reader(&stream[..]).map(|r| r.expect("itchy rejected our bytes")).collect()
}

/// What itchy should read from the first eleven samples.
fn expected_bodies() -> Vec<Body> {
    [reference_bodies(), order_bodies()].concat()
}

fn reference_bodies() -> Vec<Body> {
    let cea25 = stock("CEA25   ");
    vec![
        Body::SystemEvent { event: EventCode::StartOfMessages },
        Body::StockDirectory(StockDirectory {
            stock: cea25,
            market_category: MarketCategory::Unavailable,
            financial_status: FinancialStatus::Unavailable,
            round_lot_size: 1,
            round_lots_only: false,
            issue_classification: IssueClassification::OtherSecurities,
            issue_subtype: IssueSubType::NotApplicable,
            authenticity: true,
            short_sale_threshold: None,
            ipo_flag: None,
            luld_ref_price_tier: LuldRefPriceTier::Na,
            etp_flag: Some(false),
            etp_leverage_factor: 0,
            inverse_indicator: false,
        }),
        Body::TradingAction {
            stock: cea25,
            trading_state: TradingState::Halted,
            reason: ArrayString::from("OPER").unwrap(),
        },
        Body::LULDAuctionCollar {
            stock: cea25,
            ref_price: 746_300.into(),
            upper_price: 820_900.into(),
            lower_price: 671_700.into(),
            extension: 0,
        },
    ]
}

fn order_bodies() -> Vec<Body> {
    let cea25 = stock("CEA25   ");
    vec![
        Body::AddOrder(itchy::AddOrder {
            reference: 1234,
            side: Side::Sell,
            shares: 1000,
            stock: cea25,
            price: 746_300.into(),
            mpid: None,
        }),
        Body::OrderExecuted { reference: 1234, executed: 400, match_number: 7 },
        Body::OrderCancelled { reference: 1234, cancelled: 100 },
        Body::DeleteOrder { reference: 1234 },
        Body::ReplaceOrder(itchy::ReplaceOrder {
            old_reference: 1234,
            new_reference: 1235,
            shares: 600,
            price: 745_300.into(),
        }),
        Body::NonCrossTrade(itchy::NonCrossTrade {
            reference: 0,
            side: Side::Buy,
            shares: 100_000,
            stock: cea25,
            price: 746_300.into(),
            match_number: 8,
        }),
        Body::CrossTrade(itchy::CrossTrade {
            shares: 0,
            stock: cea25,
            cross_price: 746_300.into(),
            match_number: 0,
            cross_type: CrossType::Closing,
        }),
    ]
}

fn header_of(m: &itch::Message) -> Header {
    use itch::Message as M;
    match m {
        M::SystemEvent(x) => x.header,
        M::StockDirectory(x) => x.header,
        M::StockTradingAction(x) => x.header,
        M::LuldAuctionCollar(x) => x.header,
        M::AddOrder(x) => x.header,
        M::OrderExecuted(x) => x.header,
        M::OrderCancel(x) => x.header,
        M::OrderDelete(x) => x.header,
        M::OrderReplace(x) => x.header,
        M::Trade(x) => x.header,
        M::CrossTrade(x) => x.header,
        M::EndOfSnapshot(_) => panic!("G has no ITCH header"),
    }
}

#[test]
fn itchy_decodes_every_standard_type_we_send() {
    let samples = common::samples();
    let standard = &samples[..11];
    let parsed = parse_with_itchy(standard);
    assert_eq!(parsed.len(), standard.len(), "itchy saw another number of messages");
    for ((ours, theirs), body) in standard.iter().zip(&parsed).zip(expected_bodies()) {
        let h = header_of(ours);
        let expected = itchy::Message {
            tag: ours.message_type(),
            stock_locate: h.locate,
            tracking_number: h.tracking,
            timestamp: h.timestamp,
            body,
        };
        assert_eq!(theirs, &expected);
    }
}

#[test]
fn itchy_reads_a_48_bit_timestamp_like_we_do() {
    let m = itch::OrderDelete { header: Header::new(7, TIMESTAMP_MAX), order_ref: u64::MAX };
    let parsed = parse_with_itchy(&[m.into()]);
    assert_eq!(parsed[0].timestamp, TIMESTAMP_MAX);
    assert_eq!(parsed[0].stock_locate, 7);
    assert_eq!(parsed[0].body, Body::DeleteOrder { reference: u64::MAX });
}

fn header() -> impl Strategy<Value = Header> {
    (any::<u16>(), any::<u16>(), 0..=TIMESTAMP_MAX).prop_map(|(locate, tracking, timestamp)| Header {
        locate,
        tracking,
        timestamp,
    })
}

/// Printable ASCII stock codes (itchy requires UTF-8).
fn stock_code() -> impl Strategy<Value = [u8; 8]> {
    proptest::array::uniform8(0x20u8..0x7f)
}

fn side() -> impl Strategy<Value = (u8, Side)> {
    prop_oneof![Just((b'B', Side::Buy)), Just((b'S', Side::Sell))]
}

fn itchy_one(m: itch::Message) -> itchy::Message {
    let mut parsed = parse_with_itchy(&[m]);
    assert_eq!(parsed.len(), 1);
    let theirs = parsed.remove(0);
    let h = header_of(&m);
    assert_eq!(
        (theirs.tag, theirs.stock_locate, theirs.tracking_number, theirs.timestamp),
        (m.message_type(), h.locate, h.tracking, h.timestamp)
    );
    theirs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn itchy_agrees_on_add_order(
        header in header(), order_ref in any::<u64>(), (side, their_side) in side(), shares in any::<u32>(),
        stock in stock_code(), price in any::<u32>(),
    ) {
        let m = AddOrder { header, order_ref, side, shares, stock, price };
        let body = itchy_one(m.into()).body;
        let expected = Body::AddOrder(itchy::AddOrder {
            reference: order_ref,
            side: their_side,
            shares,
            stock: ArrayString::from(std::str::from_utf8(&stock).unwrap()).unwrap(),
            price: price.into(),
            mpid: None,
        });
        prop_assert_eq!(body, expected);
    }

    #[test]
    fn itchy_agrees_on_executions_cancels_deletes_and_replaces(
        header in header(), order_ref in any::<u64>(), new_ref in any::<u64>(), shares in any::<u32>(), price in any::<u32>(), match_number in any::<u64>(),
    ) {
        let executed = itch::OrderExecuted { header, order_ref, shares, match_number };
        prop_assert_eq!(
            itchy_one(executed.into()).body,
            Body::OrderExecuted { reference: order_ref, executed: shares, match_number }
        );
        let cancel = itch::OrderCancel { header, order_ref, shares };
        prop_assert_eq!(
            itchy_one(cancel.into()).body,
            Body::OrderCancelled { reference: order_ref, cancelled: shares }
        );
        let delete = itch::OrderDelete { header, order_ref };
        prop_assert_eq!(itchy_one(delete.into()).body, Body::DeleteOrder { reference: order_ref });
        let replace = OrderReplace { header, original_ref: order_ref, new_ref, shares, price };
        prop_assert_eq!(
            itchy_one(replace.into()).body,
            Body::ReplaceOrder(itchy::ReplaceOrder {
                old_reference: order_ref,
                new_reference: new_ref,
                shares,
                price: price.into(),
            })
        );
    }

    #[test]
    fn itchy_agrees_on_trades_and_crosses(
        header in header(), order_ref in any::<u64>(), (side, their_side) in side(), shares in any::<u32>(),
        cross_shares in any::<u64>(), stock in stock_code(), price in any::<u32>(), match_number in any::<u64>(),
        (cross_type, their_cross) in prop_oneof![
            Just((b'C', CrossType::Closing)),
            Just((b'I', CrossType::Intraday)),
            Just((b'O', CrossType::Opening)),
        ],
    ) {
        let their_stock = ArrayString::from(std::str::from_utf8(&stock).unwrap()).unwrap();
        let trade = Trade { header, order_ref, side, shares, stock, price, match_number };
        prop_assert_eq!(
            itchy_one(trade.into()).body,
            Body::NonCrossTrade(itchy::NonCrossTrade {
                reference: order_ref,
                side: their_side,
                shares,
                stock: their_stock,
                price: price.into(),
                match_number,
            })
        );
        let cross = CrossTrade { header, shares: cross_shares, stock, price, match_number, cross_type };
        prop_assert_eq!(
            itchy_one(cross.into()).body,
            Body::CrossTrade(itchy::CrossTrade {
                shares: cross_shares,
                stock: their_stock,
                cross_price: price.into(),
                match_number,
                cross_type: their_cross,
            })
        );
    }
}
