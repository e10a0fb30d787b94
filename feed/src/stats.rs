//! What a market maker's screen shows beside the book, from the feed alone:
//! per instrument the last listing trade, the day's volume and turnover by
//! method, the official close and the one-way bidding auctions' results.
//!
//! Attribution follows PROTOCOL §7.3: a listing trade is an `E` against a
//! displayed order (at that order's price); an auction's result is one
//! `Q` with cross type `I` followed by one `P` per fill, so the `P`s of an
//! instrument after such a `Q`, up to its shares, are auction fills; every
//! other `P` is a block trade; `Q` with cross type `C` is the official
//! close. Kept apart from [`BookBuilder`] so that the book's hot path stays
//! lean: call [`MarketStats::observe`] with each in-sequence message before
//! the book applies it (an execution's price comes from the book's order).

use crate::book::BookBuilder;
use crate::itch::{CrossTrade, Message};
use std::collections::BTreeMap;

/// One auction's result as the feed printed it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuctionPrint {
    /// Tonnes sold.
    pub shares: u64,
    /// The uniform price or the quantity-weighted average, 4 implied decimals.
    pub price: u32,
}

/// What one method traded: tonnes and their value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    /// Tonnes traded.
    pub tonnes: u64,
    /// Σ price × tonnes with the price's 4 implied decimals (so 1/10,000
    /// yuan); `u128` because one print's price × shares can pass `u64`.
    pub turnover: u128,
}

impl Volume {
    /// Counts one print; saturating, so that no feed content can panic.
    fn add(&mut self, shares: u64, price: u32) {
        self.tonnes = self.tonnes.saturating_add(shares);
        self.turnover = self.turnover.saturating_add(u128::from(shares) * u128::from(price));
    }
}

/// One instrument's day so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstrumentStats {
    /// The last listing trade: (price, tonnes).
    pub last: Option<(u32, u32)>,
    /// Listing trades (`E` at the resting order's price).
    pub listing: Volume,
    /// Block trades (`P` outside an auction's result).
    pub block: Volume,
    /// Auction fills (`P` after a `Q` cross `I`, up to its shares).
    pub auction: Volume,
    /// The official close, once printed.
    pub close: Option<u32>,
    /// Auction results in print order.
    pub auctions: Vec<AuctionPrint>,
    /// Auction fill tonnes announced by the last `Q` `I` and not yet printed as `P`.
    auction_tonnes_due: u64,
}

/// Every instrument's statistics, by stock locate.
#[derive(Clone, Debug, Default)]
pub struct MarketStats {
    by_locate: BTreeMap<u16, InstrumentStats>,
}

impl MarketStats {
    /// Empty statistics.
    pub fn new() -> MarketStats {
        MarketStats::default()
    }

    /// Counts `message`; `book` is the book *before* it applies the message.
    pub fn observe(&mut self, message: &Message, book: &BookBuilder) {
        match message {
            Message::OrderExecuted(e) => {
                if let Some(order) = book.order(e.order_ref) {
                    let s = self.by_locate.entry(order.locate).or_default();
                    s.last = Some((order.price, e.shares));
                    s.listing.add(u64::from(e.shares), order.price);
                }
            }
            Message::Trade(p) => {
                let s = self.by_locate.entry(p.header.locate).or_default();
                let shares = u64::from(p.shares);
                if s.auction_tonnes_due >= shares {
                    s.auction_tonnes_due -= shares;
                    s.auction.add(shares, p.price);
                } else {
                    // A print that does not fit ends the auction's fills, so
                    // that a later small block is not taken for one.
                    s.auction_tonnes_due = 0;
                    s.block.add(shares, p.price);
                }
            }
            Message::CrossTrade(q) => {
                let s = self.by_locate.entry(q.header.locate).or_default();
                match q.cross_type {
                    CrossTrade::CLOSING => s.close = Some(q.price),
                    CrossTrade::INTRADAY => {
                        s.auctions.push(AuctionPrint { shares: q.shares, price: q.price });
                        s.auction_tonnes_due = q.shares;
                    }
                    _ => {}
                }
            }
            Message::SystemEvent(e) if e.event_code == b'O' => self.by_locate.clear(),
            _ => {}
        }
    }

    /// One instrument's statistics (empty ones if nothing traded yet).
    pub fn of(&self, locate: u16) -> InstrumentStats {
        self.by_locate.get(&locate).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::{AddOrder, Header, OrderExecuted, SystemEvent, Trade};

    fn header(locate: u16) -> Header {
        Header { locate, tracking: 0, timestamp: 0 }
    }

    fn feed(stats: &mut MarketStats, book: &mut BookBuilder, messages: &[Message]) {
        for message in messages {
            stats.observe(message, book);
            book.apply(book.next_seq(), message).unwrap();
        }
    }

    fn trade(locate: u16, shares: u32, price: u32) -> Message {
        let stock = *b"CEA     ";
        Message::Trade(Trade {
            header: header(locate),
            order_ref: 0,
            side: b'B',
            shares,
            stock,
            price,
            match_number: 9,
        })
    }

    fn cross(locate: u16, shares: u64, price: u32, cross_type: u8) -> Message {
        let stock = *b"CEA     ";
        Message::CrossTrade(CrossTrade { header: header(locate), shares, stock, price, match_number: 0, cross_type })
    }

    #[test]
    fn listing_block_auction_and_close_are_told_apart() {
        let (mut stats, mut book) = (MarketStats::new(), BookBuilder::new());
        let add = |order_ref, shares, price| {
            let (side, stock) = (b'S', *b"CEA     ");
            Message::AddOrder(AddOrder { header: header(1), order_ref, side, shares, stock, price })
        };
        let exec = |order_ref, shares| {
            Message::OrderExecuted(OrderExecuted { header: header(1), order_ref, shares, match_number: 1 })
        };
        feed(
            &mut stats,
            &mut book,
            &[
                add(1, 100, 746_300),
                add(2, 50, 746_400),
                exec(1, 30),
                exec(2, 50),
                trade(1, 200_000, 750_000),
                cross(1, 150_000, 746_300, CrossTrade::INTRADAY),
                trade(1, 100_000, 746_300),
                trade(1, 50_000, 746_300),
                trade(1, 100_000, 760_000),
                cross(1, 0, 746_333, CrossTrade::CLOSING),
                exec(99, 5), // an unknown order: no trade counted
            ],
        );
        let s = stats.of(1);
        assert_eq!(s.last, Some((746_400, 50)));
        let tonnes = (s.listing.tonnes, s.block.tonnes, s.auction.tonnes);
        assert_eq!(tonnes, (80, 300_000, 150_000));
        let turnover = (s.listing.turnover, s.block.turnover, s.auction.turnover);
        assert_eq!(turnover, (30 * 746_300 + 50 * 746_400, 200_000 * 750_000 + 100_000 * 760_000, 150_000 * 746_300));
        assert_eq!(s.close, Some(746_333));
        assert_eq!(s.auctions, [AuctionPrint { shares: 150_000, price: 746_300 }]);
        assert_eq!(stats.of(2), InstrumentStats::default());
        // A new day starts from nothing.
        let start = Message::SystemEvent(SystemEvent { header: header(0), event_code: b'O' });
        feed(&mut stats, &mut book, &[start]);
        assert_eq!(stats.of(1), InstrumentStats::default());
    }

    #[test]
    fn a_print_larger_than_the_auction_left_is_a_block_and_ends_the_fills() {
        let (mut stats, mut book) = (MarketStats::new(), BookBuilder::new());
        let messages = [cross(1, 100, 700_000, CrossTrade::INTRADAY), trade(1, 150, 750_000), trade(1, 50, 750_000)];
        feed(&mut stats, &mut book, &messages);
        let s = stats.of(1);
        assert_eq!((s.block.tonnes, s.auction.tonnes), (200, 0));
    }

    #[test]
    fn volumes_saturate_instead_of_panicking() {
        let mut volume = Volume { tonnes: u64::MAX - 1, turnover: u128::MAX - 1 };
        volume.add(u64::from(u32::MAX), u32::MAX);
        assert_eq!(volume, Volume { tonnes: u64::MAX, turnover: u128::MAX });
    }
}
