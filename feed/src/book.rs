//! A book built from the feed alone: what a market maker (and `carbonx
//! watch`) keeps, and what the server's own snapshot service serves.
//!
//! [`BookBuilder`] applies sequenced ITCH messages, refuses a gap (the
//! caller re-requests the missing numbers and applies them first), and
//! exposes top-N levels per instrument. Orders keep their arrival order, so
//! a snapshot lists each level's orders in time priority.

use crate::itch::{AddOrder, Header, LuldAuctionCollar, Message, StockDirectory, StockTradingAction};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// A resting order as the feed shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedOrder {
    /// Stock locate.
    pub locate: u16,
    /// `B` or `S`.
    pub side: u8,
    /// Open shares.
    pub shares: u32,
    /// Price, 4 implied decimals.
    pub price: u32,
    /// Arrival number: priority within a level.
    arrival: u64,
}

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Price, 4 implied decimals.
    pub price: u32,
    /// Total open shares.
    pub shares: u64,
    /// Number of orders.
    pub orders: u32,
}

/// A sequence number arrived out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("feed gap: expected sequence {expected}, got {got}")]
pub struct Gap {
    /// The next number the builder needs.
    pub expected: u64,
    /// The number that arrived.
    pub got: u64,
}

/// Every instrument's book, from the feed.
#[derive(Clone, Debug, Default)]
pub struct BookBuilder {
    next_seq: u64,
    arrivals: u64,
    /// Hashed, not ordered: updates are the hot path; `top` and
    /// `snapshot` sort what they need (Fx: the keys are the server's own
    /// order references, not attacker-chosen).
    orders: FxHashMap<u64, FeedOrder>,
    /// (locate, side, price) → (shares, orders).
    levels: FxHashMap<(u16, u8, u32), (u64, u32)>,
    directory: BTreeMap<u16, StockDirectory>,
    collars: BTreeMap<u16, LuldAuctionCollar>,
    states: BTreeMap<u16, StockTradingAction>,
}

impl BookBuilder {
    /// An empty builder expecting sequence number 1.
    pub fn new() -> BookBuilder {
        BookBuilder { next_seq: 1, ..BookBuilder::default() }
    }

    /// The next sequence number it needs.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Applies message number `seq`. Older numbers are ignored (a
    /// duplicate after a re-request); a newer one is a [`Gap`].
    ///
    /// # Errors
    /// [`Gap`] when `seq` is past the next expected number.
    pub fn apply(&mut self, seq: u64, message: &Message) -> Result<(), Gap> {
        if seq < self.next_seq {
            return Ok(());
        }
        if seq > self.next_seq {
            return Err(Gap { expected: self.next_seq, got: seq });
        }
        self.apply_unsequenced(message);
        self.next_seq += 1;
        Ok(())
    }

    /// Applies a snapshot message (no sequence number); after the snapshot's
    /// `G`, call [`BookBuilder::resume_at`].
    pub fn apply_unsequenced(&mut self, message: &Message) {
        match message {
            Message::StockDirectory(r) => {
                self.directory.insert(r.header.locate, *r);
            }
            Message::LuldAuctionCollar(j) => {
                self.collars.insert(j.header.locate, *j);
            }
            Message::StockTradingAction(h) => {
                self.states.insert(h.header.locate, *h);
            }
            Message::AddOrder(a) => self.add(a.order_ref, a.header.locate, a.side, a.shares, a.price),
            Message::OrderExecuted(e) => self.take(e.order_ref, e.shares),
            Message::OrderCancel(x) => self.take(x.order_ref, x.shares),
            Message::OrderDelete(d) => {
                if let Some(order) = self.orders.get(&d.order_ref).copied() {
                    self.take(d.order_ref, order.shares);
                }
            }
            Message::OrderReplace(u) => {
                if let Some(old) = self.orders.get(&u.original_ref).copied() {
                    self.take(u.original_ref, old.shares);
                    self.add(u.new_ref, old.locate, old.side, u.shares, u.price);
                }
            }
            Message::EndOfSnapshot(g) => self.next_seq = g.sequence,
            _ => {}
        }
    }

    /// Continues from feed sequence number `seq` (a snapshot's `G`).
    pub fn resume_at(&mut self, seq: u64) {
        self.next_seq = seq;
    }

    fn add(&mut self, order_ref: u64, locate: u16, side: u8, shares: u32, price: u32) {
        self.arrivals += 1;
        self.orders.insert(order_ref, FeedOrder { locate, side, shares, price, arrival: self.arrivals });
        let level = self.levels.entry((locate, side, price)).or_default();
        level.0 += u64::from(shares);
        level.1 += 1;
    }

    fn take(&mut self, order_ref: u64, shares: u32) {
        let Some(order) = self.orders.get_mut(&order_ref) else {
            return;
        };
        let taken = shares.min(order.shares);
        order.shares -= taken;
        let key = (order.locate, order.side, order.price);
        let gone = order.shares == 0;
        if gone {
            self.orders.remove(&order_ref);
        }
        if let Some(level) = self.levels.get_mut(&key) {
            level.0 -= u64::from(taken);
            if gone {
                level.1 -= 1;
            }
            if level.1 == 0 {
                self.levels.remove(&key);
            }
        }
    }

    /// The best `n` levels of one side (`B` bids high to low, `S` asks low to high).
    pub fn top(&self, locate: u16, side: u8, n: usize) -> Vec<Level> {
        let mut levels: Vec<Level> = self
            .levels
            .iter()
            .filter(|((l, s, _), _)| *l == locate && *s == side)
            .map(|(&(_, _, price), &(shares, orders))| Level { price, shares, orders })
            .collect();
        if side == b'B' {
            levels.sort_unstable_by_key(|l| std::cmp::Reverse(l.price));
        } else {
            levels.sort_unstable_by_key(|l| l.price);
        }
        levels.truncate(n);
        levels
    }

    /// Every resting order, `(reference, order)`, by reference.
    pub fn orders(&self) -> BTreeMap<u64, FeedOrder> {
        self.orders.iter().map(|(r, o)| (*r, *o)).collect()
    }

    /// A resting order by reference.
    pub fn order(&self, order_ref: u64) -> Option<FeedOrder> {
        self.orders.get(&order_ref).copied()
    }

    /// An instrument's collar: (reference, lower, upper), 4 implied decimals.
    pub fn band(&self, locate: u16) -> Option<(u32, u32, u32)> {
        self.collars.get(&locate).map(|j| (j.reference_price, j.lower_price, j.upper_price))
    }

    /// The instruments seen in the directory: `(locate, stock)`.
    pub fn instruments(&self) -> Vec<(u16, [u8; 8])> {
        self.directory.iter().map(|(l, r)| (*l, r.stock)).collect()
    }

    /// The trading state letter of an instrument (`T`, `P`, `H`), if announced.
    pub fn state(&self, locate: u16) -> Option<u8> {
        self.states.get(&locate).map(|h| h.trading_state)
    }

    /// The book as snapshot messages: every `R`, `J`, `H`, then each resting
    /// order as an `A`, by instrument, side and price, in time priority, all
    /// stamped `ns`.
    pub fn snapshot(&self, ns: u64) -> Vec<Message> {
        let mut out: Vec<Message> = Vec::new();
        out.extend(
            self.directory
                .values()
                .map(|r| Message::StockDirectory(StockDirectory { header: stamp(r.header, ns), ..*r })),
        );
        out.extend(
            self.collars
                .values()
                .map(|j| Message::LuldAuctionCollar(LuldAuctionCollar { header: stamp(j.header, ns), ..*j })),
        );
        out.extend(
            self.states
                .values()
                .map(|h| Message::StockTradingAction(StockTradingAction { header: stamp(h.header, ns), ..*h })),
        );
        let mut resting: Vec<(&u64, &FeedOrder)> = self.orders.iter().collect();
        resting.sort_by_key(|(_, o)| {
            let price_priority = if o.side == b'B' { u32::MAX - o.price } else { o.price };
            (o.locate, o.side, price_priority, o.arrival)
        });
        for (order_ref, o) in resting {
            let stock = self.directory.get(&o.locate).map_or([b' '; 8], |r| r.stock);
            let header = Header::new(o.locate, ns);
            out.push(Message::AddOrder(AddOrder {
                header,
                order_ref: *order_ref,
                side: o.side,
                shares: o.shares,
                stock,
                price: o.price,
            }));
        }
        out
    }
}

fn stamp(header: Header, ns: u64) -> Header {
    Header { timestamp: ns, ..header }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::{OrderDelete, OrderExecuted, OrderReplace};

    fn add(order_ref: u64, side: u8, shares: u32, price: u32) -> Message {
        Message::AddOrder(AddOrder { header: Header::new(1, 0), order_ref, side, shares, stock: *b"CEA     ", price })
    }

    #[test]
    fn levels_gaps_and_priority() {
        let mut book = BookBuilder::new();
        book.apply(1, &add(1, b'B', 10, 740_000)).unwrap();
        book.apply(2, &add(2, b'B', 5, 740_000)).unwrap();
        book.apply(3, &add(3, b'B', 7, 745_000)).unwrap();
        book.apply(4, &add(4, b'S', 3, 750_000)).unwrap();
        assert_eq!(book.apply(6, &add(9, b'S', 1, 1)), Err(Gap { expected: 5, got: 6 }));
        book.apply(3, &add(3, b'B', 7, 745_000)).unwrap(); // duplicate: ignored
        let executed = Message::OrderExecuted(OrderExecuted {
            header: Header::new(1, 0),
            order_ref: 1,
            shares: 4,
            match_number: 1,
        });
        book.apply(5, &executed).unwrap();
        let bids = book.top(1, b'B', 5);
        assert_eq!(
            bids,
            vec![Level { price: 745_000, shares: 7, orders: 1 }, Level { price: 740_000, shares: 11, orders: 2 }]
        );
        let replace = Message::OrderReplace(OrderReplace {
            header: Header::new(1, 0),
            original_ref: 1,
            new_ref: 8,
            shares: 6,
            price: 740_000,
        });
        book.apply(6, &replace).unwrap();
        book.apply(7, &Message::OrderDelete(OrderDelete { header: Header::new(1, 0), order_ref: 3 })).unwrap();
        // Order 1 lost priority to 2 by its replace: the snapshot lists 2 then 8.
        let refs: Vec<u64> = book
            .snapshot(0)
            .iter()
            .filter_map(|m| if let Message::AddOrder(a) = m { Some(a.order_ref) } else { None })
            .collect();
        assert_eq!(refs, vec![2, 8, 4]);
        assert_eq!(book.top(1, b'S', 5), vec![Level { price: 750_000, shares: 3, orders: 1 }]);
    }
}
