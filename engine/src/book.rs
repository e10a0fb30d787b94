//! The listing book's data structures: a preallocated order slab with a
//! free list, and one price ladder per side with an intrusive FIFO per
//! level and an occupancy bitmap for the best-price search.
//!
//! Why a ladder: listing prices are bounded by the ±10% band, so an array
//! indexed by tick is both smaller and faster than a tree; the bitmap finds
//! the next occupied level 64 ticks per instruction.

use crate::inspect::Breach;
use crate::types::{AccountId, InstrumentId, OrderId, Price, Qty, Side, Token, UserId};

/// The "no slot" link.
pub(crate) const NIL: u32 = u32::MAX;

/// A resting order in the slab.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    /// Public reference.
    pub id: OrderId,
    /// Current token.
    pub token: Token,
    /// Owner's user.
    pub user: UserId,
    /// Owner's account (self-trade prevention, kill switch).
    pub account: AccountId,
    /// Book.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Open quantity, never zero while resting.
    pub open: Qty,
    /// Capacity letter, echoed in Replaced.
    pub capacity: u8,
    /// Previous order in the level's FIFO.
    prev: u32,
    /// Next order in the level's FIFO.
    next: u32,
}

impl Order {
    /// A new order, not yet linked into any level.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: OrderId,
        token: Token,
        user: UserId,
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        open: Qty,
        capacity: u8,
    ) -> Order {
        Order { id, token, user, account, instrument, side, price, open, capacity, prev: NIL, next: NIL }
    }

    /// The next order in the same level, or [`NIL`].
    pub fn next(&self) -> u32 {
        self.next
    }
}

/// Fixed-capacity storage for every resting order of every book.
///
/// Every slot is written at construction, so that the memory is touched
/// (page-faulted in) at start-up rather than on the hot path.
pub(crate) struct Slab {
    orders: Vec<Order>,
    /// Free slots, the lowest on top.
    free: Vec<u32>,
}

impl Slab {
    /// A slab for `capacity` orders, all memory touched now.
    pub fn with_capacity(capacity: u32) -> Slab {
        let blank = Order::new(
            OrderId::new(0),
            Token::from_bytes([b' '; 14]),
            UserId::new(0),
            AccountId::new(0),
            InstrumentId::new(0),
            Side::Buy,
            Price::MIN,
            Qty::ZERO,
            b' ',
        );
        Slab { orders: vec![blank; capacity as usize], free: (0..capacity).rev().collect() }
    }

    /// True when no slot is left.
    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Stores `order`; `None` when full (the caller rejects `F` before this).
    pub fn insert(&mut self, order: Order) -> Option<u32> {
        let slot = self.free.pop()?;
        self.orders[slot as usize] = order;
        Some(slot)
    }

    /// Returns `slot` to the free list.
    pub fn remove(&mut self, slot: u32) {
        debug_assert!(!self.free.contains(&slot), "double free of slot {slot}");
        self.free.push(slot);
    }

    /// The order in `slot`.
    pub fn get(&self, slot: u32) -> &Order {
        &self.orders[slot as usize]
    }

    /// The order in `slot`, mutably.
    pub fn get_mut(&mut self, slot: u32) -> &mut Order {
        &mut self.orders[slot as usize]
    }

    /// Number of orders stored.
    pub fn len(&self) -> usize {
        self.orders.len() - self.free.len()
    }
}

/// One price level: a FIFO of slots and its total.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Level {
    head: u32,
    tail: u32,
    /// Sum of the open quantities of the level's orders.
    pub qty: u64,
    /// Number of orders.
    pub count: u32,
}

const EMPTY_LEVEL: Level = Level { head: NIL, tail: NIL, qty: 0, count: 0 };

impl Level {
    /// The oldest order, or [`NIL`].
    pub fn head(&self) -> u32 {
        self.head
    }
}

/// One side of a book: levels indexed by tick from the band's lower edge.
pub(crate) struct Ladder {
    side: Side,
    lower: u32,
    levels: Vec<Level>,
    occupied: Vec<u64>,
    /// Index of the best occupied level, if any.
    best: Option<u32>,
}

impl Ladder {
    /// An empty ladder over `lower..=upper`, with room for a band twice as
    /// wide so that the daily roll after a rising close need not allocate.
    pub fn new(side: Side, lower: Price, upper: Price) -> Ladder {
        let room = 2 * (upper.fen() - lower.fen() + 1) as usize;
        let levels = Vec::with_capacity(room);
        let occupied = Vec::with_capacity(room.div_ceil(64));
        let mut ladder = Ladder { side, lower: 0, levels, occupied, best: None };
        ladder.reset(lower, upper);
        ladder
    }

    /// Empties the ladder and spans it over a new band (the daily roll).
    /// Reuses its memory when the new band is no wider.
    pub fn reset(&mut self, lower: Price, upper: Price) {
        let width = (upper.fen() - lower.fen() + 1) as usize;
        self.lower = lower.fen();
        self.levels.clear();
        self.levels.resize(width, EMPTY_LEVEL);
        self.occupied.clear();
        self.occupied.resize(width.div_ceil(64), 0);
        self.best = None;
    }

    /// The best price, if any order rests.
    pub fn best_price(&self) -> Option<Price> {
        self.best.map(|i| self.price_at(i))
    }

    /// The best level, if any.
    pub fn best_level(&self) -> Option<&Level> {
        self.best.map(|i| &self.levels[i as usize])
    }

    fn price_at(&self, index: u32) -> Price {
        Price::from_fen(self.lower + index).expect("ladder price in range")
    }

    fn index(&self, price: Price) -> u32 {
        price.fen() - self.lower
    }

    /// Appends the order in `slot` at the back of its price's queue.
    pub fn push_back(&mut self, slab: &mut Slab, slot: u32) {
        let (price, qty) = {
            let order = slab.get(slot);
            (order.price, order.open)
        };
        let index = self.index(price);
        let level = &mut self.levels[index as usize];
        let old_tail = level.tail;
        {
            let order = slab.get_mut(slot);
            order.prev = old_tail;
            order.next = NIL;
        }
        if old_tail == NIL {
            level.head = slot;
        } else {
            slab.get_mut(old_tail).next = slot;
        }
        level.tail = slot;
        level.qty += u64::from(qty.tonnes());
        level.count += 1;
        if level.count == 1 {
            self.mark(index);
        }
    }

    /// Unlinks the order in `slot` from its level (the slot stays allocated).
    pub fn unlink(&mut self, slab: &mut Slab, slot: u32) {
        let (prev, next, price, qty) = {
            let o = slab.get(slot);
            (o.prev, o.next, o.price, o.open)
        };
        let index = self.index(price);
        let level = &mut self.levels[index as usize];
        if prev == NIL {
            level.head = next
        } else {
            slab.get_mut(prev).next = next
        }
        if next == NIL {
            level.tail = prev
        } else {
            slab.get_mut(next).prev = prev
        }
        level.qty -= u64::from(qty.tonnes());
        level.count -= 1;
        if level.count == 0 {
            self.unmark(index);
        }
    }

    /// Takes `by` tonnes off the order in `slot`, keeping its place.
    /// The order must keep a positive quantity (use [`Ladder::unlink`] otherwise).
    pub fn reduce(&mut self, slab: &mut Slab, slot: u32, by: Qty) {
        let order = slab.get_mut(slot);
        order.open = order.open.minus(by);
        assert!(!order.open.is_zero(), "reduce to zero must unlink");
        let index = self.index(order.price);
        self.levels[index as usize].qty -= u64::from(by.tonnes());
    }

    fn mark(&mut self, index: u32) {
        self.occupied[(index / 64) as usize] |= 1 << (index % 64);
        let better = match (self.best, self.side) {
            (None, _) => true,
            (Some(b), Side::Buy) => index > b,
            (Some(b), Side::Sell) => index < b,
        };
        if better {
            self.best = Some(index);
        }
    }

    fn unmark(&mut self, index: u32) {
        self.occupied[(index / 64) as usize] &= !(1 << (index % 64));
        if self.best == Some(index) {
            self.best = match self.side {
                Side::Buy => self.occupied_below(index),
                Side::Sell => self.occupied_above(index),
            };
        }
    }

    /// The highest occupied index below `index`.
    fn occupied_below(&self, index: u32) -> Option<u32> {
        let mut word = (index / 64) as usize;
        let mut bits = self.occupied[word] & ((1u64 << (index % 64)) - 1);
        loop {
            if bits != 0 {
                return Some(word as u32 * 64 + 63 - bits.leading_zeros());
            }
            if word == 0 {
                return None;
            }
            word -= 1;
            bits = self.occupied[word];
        }
    }

    /// The lowest occupied index above `index`.
    fn occupied_above(&self, index: u32) -> Option<u32> {
        let mut word = (index / 64) as usize;
        let shift = index % 64 + 1;
        let mut bits = if shift == 64 { 0 } else { self.occupied[word] & (u64::MAX << shift) };
        loop {
            if bits != 0 {
                return Some(word as u32 * 64 + bits.trailing_zeros());
            }
            word += 1;
            if word == self.occupied.len() {
                return None;
            }
            bits = self.occupied[word];
        }
    }

    /// The index of the best occupied level.
    pub fn best_index(&self) -> Option<u32> {
        self.best
    }

    /// The level at ladder index `index`.
    pub fn level_at(&self, index: u32) -> &Level {
        &self.levels[index as usize]
    }

    /// The next occupied level worse than `index` (which need not be occupied).
    pub fn next_worse(&self, index: u32) -> Option<u32> {
        match self.side {
            Side::Buy => self.occupied_below(index),
            Side::Sell => self.occupied_above(index),
        }
    }

    /// Occupied levels from best to worst, with their prices.
    pub fn levels_best_first(&self) -> impl Iterator<Item = (Price, &Level)> + '_ {
        let mut next = self.best;
        std::iter::from_fn(move || {
            let index = next?;
            next = self.next_worse(index);
            Some((self.price_at(index), &self.levels[index as usize]))
        })
    }

    /// The slot of order `id` if it rests in one of the best `levels`
    /// levels (a pick's target): a walk of their queues.
    pub fn find_in_best(&self, slab: &Slab, levels: usize, id: OrderId) -> Option<u32> {
        self.levels_best_first().take(levels).find_map(|(_, level)| {
            let mut slot = level.head();
            while slot != NIL {
                let order = slab.get(slot);
                if order.id == id {
                    return Some(slot);
                }
                slot = order.next();
            }
            None
        })
    }

    /// Checks the ladder against the slab: how many orders it holds, or
    /// the first breach.
    pub fn check_invariants(&self, slab: &Slab, instrument: InstrumentId) -> Result<usize, Breach> {
        let mut seen = 0usize;
        for (index, level) in self.levels.iter().enumerate() {
            let bit = self.occupied[index / 64] >> (index % 64) & 1 == 1;
            ensure_eq!(bit, level.count > 0, "occupancy bit disagrees at level {index}");
            if level.count > 0 {
                seen += self.check_level(slab, instrument, index, level)?;
            }
        }
        let actual_best = match self.side {
            Side::Buy => self.levels.iter().rposition(|l| l.count > 0),
            Side::Sell => self.levels.iter().position(|l| l.count > 0),
        };
        ensure_eq!(self.best.map(|b| b as usize), actual_best, "stale best {:?}", self.side);
        Ok(seen)
    }

    fn check_level(&self, slab: &Slab, instrument: InstrumentId, index: usize, level: &Level) -> Result<usize, Breach> {
        let price = self.price_at(index as u32);
        let (mut slot, mut prev, mut qty, mut count) = (level.head, NIL, 0u64, 0u32);
        while slot != NIL {
            let o = slab.get(slot);
            ensure_eq!(o.prev, prev, "broken back link at {price}");
            ensure!(!o.open.is_zero(), "zero-quantity order {:?} rests", o.id);
            ensure_eq!((o.price, o.side, o.instrument), (price, self.side, instrument), "misfiled {:?}", o.id);
            qty += u64::from(o.open.tonnes());
            count += 1;
            prev = slot;
            slot = o.next;
            ensure!(count <= level.count, "cycle in level {price}");
        }
        ensure_eq!(level.tail, prev, "tail disagrees at {price}");
        ensure_eq!((level.qty, level.count), (qty, count), "level total disagrees at {price}");
        Ok(count as usize)
    }
}
