//! The peers that join only on the adds-and-cancels stream, where every
//! engine means the same: `lobster` 0.7.0 (no limit IOC, no amend) and
//! `orderbook-rs` 0.15.3 (a concurrent book whose matching and amends
//! follow other rules). Each gets the stream translated into its own
//! orders, a book pre-filled outside the measurement, and a check that it
//! placed and cancelled every order and ends with the given tonnes resting.

use crate::streams::Op;
use lobster as lob;
use orderbook_rs as obr;
use std::hint::black_box;

/// Translates adds and cancels into lobster's orders (an order's id is its
/// index). Only streams without IOCs or replaces: lobster has neither.
pub fn to_lobster(ops: &[Op]) -> Vec<lob::OrderType> {
    let side = |buy| if buy { lob::Side::Bid } else { lob::Side::Ask };
    ops.iter()
        .map(|op| match *op {
            Op::Limit { k, buy, price, qty } => lob::OrderType::Limit {
                id: u128::from(k),
                side: side(buy),
                qty: u64::from(qty),
                price: u64::from(price),
            },
            Op::Cancel { k } => lob::OrderType::Cancel { id: u128::from(k) },
            Op::Ioc { .. } | Op::Replace { .. } => unreachable!("lobster runs the adds-and-cancels stream only"),
        })
        .collect()
}

/// A lobster book after `prefill`.
pub fn lobster_book(prefill: &[lob::OrderType]) -> lob::OrderBook {
    let mut book = lob::OrderBook::new(1 << 16, 16, false);
    for order in prefill {
        black_box(book.execute(*order));
    }
    book
}

/// Runs `all` through lobster and checks that every order was placed or
/// cancelled and that `resting` (bids, asks) tonnes are left.
pub fn check_lobster(all: &[lob::OrderType], resting: (u64, u64)) {
    let mut lobster = lob::OrderBook::new(1 << 16, 16, false);
    for order in all {
        let answer = lobster.execute(*order);
        let expected = matches!(answer, lob::OrderEvent::Placed { .. } | lob::OrderEvent::Canceled { .. });
        assert!(expected, "adds_cancels: lobster answered {answer:?} to {order:?}");
    }
    // lobster reserves `levels` entries per side and reports every level.
    let depth = lobster.depth(1_000);
    let lobster_resting = (depth.bids.iter().map(|l| l.qty).sum(), depth.asks.iter().map(|l| l.qty).sum());
    assert_eq!(resting, lobster_resting, "adds_cancels: lobster's book and carbonx's part");
}

/// One adds-and-cancels operation for orderbook-rs (ids are order indexes).
#[derive(Clone, Copy, Debug)]
pub enum ObrOp {
    Add { id: u64, side: obr::Side, price: u128, qty: u64 },
    Cancel { id: u64 },
}

/// Translates adds and cancels into orderbook-rs operations.
pub fn to_orderbook_rs(ops: &[Op]) -> Vec<ObrOp> {
    ops.iter()
        .map(|op| match *op {
            Op::Limit { k, buy, price, qty } => ObrOp::Add {
                id: u64::from(k),
                side: if buy { obr::Side::Buy } else { obr::Side::Sell },
                price: u128::from(price),
                qty: u64::from(qty),
            },
            Op::Cancel { k } => ObrOp::Cancel { id: u64::from(k) },
            Op::Ioc { .. } | Op::Replace { .. } => unreachable!("orderbook-rs runs the adds-and-cancels stream only"),
        })
        .collect()
}

/// Applies one operation; true when orderbook-rs placed or cancelled the order.
pub fn orderbook_rs_apply(book: &obr::OrderBook<()>, op: &ObrOp) -> bool {
    match *op {
        ObrOp::Add { id, side, price, qty } => {
            let id = obr::Id::Sequential(id);
            book.add_limit_order(id, price, qty, side, obr::TimeInForce::Gtc, None).is_ok()
        }
        ObrOp::Cancel { id } => matches!(book.cancel_order(obr::Id::Sequential(id)), Ok(Some(_))),
    }
}

/// An orderbook-rs book after `prefill`.
pub fn orderbook_rs_book(prefill: &[ObrOp]) -> obr::OrderBook<()> {
    let book = obr::OrderBook::new("CEA");
    for op in prefill {
        black_box(orderbook_rs_apply(&book, op));
    }
    book
}

/// Runs `all` through orderbook-rs and checks that every order was placed
/// or cancelled and that `resting` (bids, asks) tonnes are left.
pub fn check_orderbook_rs(all: &[ObrOp], resting: (u64, u64)) {
    let book = obr::OrderBook::new("CEA");
    for op in all {
        assert!(orderbook_rs_apply(&book, op), "adds_cancels: orderbook-rs refused {op:?}");
    }
    let side = |side| book.total_depth_at_levels(1_000, side).expect("depth");
    let theirs = (side(obr::Side::Buy), side(obr::Side::Sell));
    assert_eq!(resting, theirs, "adds_cancels: orderbook-rs's book and carbonx's part");
}
