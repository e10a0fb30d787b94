//! The listing book's data structures: a preallocated order slab with a
//! free list, and one price ladder per side with a queue of chunks per
//! level and an occupancy bitmap for the best-price search.
//!
//! Why a ladder: listing prices are bounded by the ±10% band, so an array
//! indexed by tick is both smaller and faster than a tree; the bitmap finds
//! the next occupied level 64 ticks per instruction.
//!
//! Why chunks: a level's queue is a chain of cache-line chunks of slot
//! numbers, in time priority. Matching reads a level's queue a line at a
//! time instead of chasing one pointer per order, an add writes the tail
//! line, and a cancel clears its entry in place (the order knows where it
//! is) instead of relinking both neighbours: one cache line touched
//! instead of two other orders. A chunk whose entries have all left is
//! unchained and freed at once, so every chained chunk holds a live order
//! and the chunks never outnumber the slab's slots: the pool is sized with
//! the slab and never grows.

use crate::inspect::Breach;
use crate::types::{AccountId, InstrumentId, OrderId, Price, Qty, Side, Token, UserId};

/// The "no slot" / "no chunk" link, and a cleared queue entry.
pub(crate) const NIL: u32 = u32::MAX;

/// Queue entries per chunk: thirteen slot numbers and the chunk's links
/// and counts fill one 64-byte cache line.
const ENTRIES: usize = 13;

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
    /// The queue chunk holding this order's entry.
    chunk: u32,
    /// The entry's index in its chunk.
    entry: u8,
}

impl Order {
    /// A new order, not yet queued at any level.
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
        Order { id, token, user, account, instrument, side, price, open, capacity, chunk: NIL, entry: 0 }
    }
}

/// One cache line of a level's queue: slot numbers in time priority
/// ([`NIL`] where an order has left), the links of the level's chain, and
/// how many entries are used and still live.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Chunk {
    slots: [u32; ENTRIES],
    prev: u32,
    next: u32,
    used: u16,
    live: u16,
}

const BLANK_CHUNK: Chunk = Chunk { slots: [NIL; ENTRIES], prev: NIL, next: NIL, used: 0, live: 0 };

const _: () = assert!(std::mem::size_of::<Chunk>() == 64);

/// Fixed-capacity storage for every resting order of every book, and the
/// chunks of every level's queue.
///
/// Every slot and chunk is written at construction, so that the memory is
/// touched (page-faulted in) at start-up rather than on the hot path.
pub(crate) struct Slab {
    orders: Vec<Order>,
    /// Free slots, the lowest on top.
    free: Vec<u32>,
    /// Queue chunks: at most one per resting order (each chained chunk
    /// holds a live entry).
    chunks: Vec<Chunk>,
    /// First free chunk; free chunks are linked through `next`.
    free_chunks: u32,
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
        let chunks = (0..capacity)
            .map(|i| Chunk { next: if i + 1 == capacity { NIL } else { i + 1 }, ..BLANK_CHUNK })
            .collect();
        let free_chunks = if capacity == 0 { NIL } else { 0 };
        Slab { orders: vec![blank; capacity as usize], free: (0..capacity).rev().collect(), chunks, free_chunks }
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

    /// Starts loading the order in `slot` (matching looks one entry ahead).
    fn prefetch(&self, slot: u32) {
        if slot != NIL {
            crate::hint::prefetch(&self.orders[slot as usize]);
        }
    }

    /// A chunk from the pool, empty and unchained.
    fn take_chunk(&mut self) -> u32 {
        let index = self.free_chunks;
        // Each chained chunk holds a live order and the pool has a chunk per slot.
        assert!(index != NIL, "queue chunks exhausted: more chained chunks than resting orders");
        let chunk = &mut self.chunks[index as usize];
        self.free_chunks = chunk.next;
        *chunk = BLANK_CHUNK;
        index
    }

    /// Returns an unchained chunk to the pool.
    fn give_chunk(&mut self, index: u32) {
        let chunk = &mut self.chunks[index as usize];
        (chunk.next, chunk.live, chunk.used) = (self.free_chunks, 0, 0);
        self.free_chunks = index;
    }

    /// The live slots of a level's queue, oldest first.
    pub fn queue<'a>(&'a self, level: &Level) -> impl Iterator<Item = u32> + 'a {
        let mut cursor = Cursor::new(self, level);
        std::iter::from_fn(move || cursor.next_slot(self))
    }
}

/// A position in a level's queue that stays valid while the orders it has
/// passed or reached leave the book (a drain cancels as it walks): it
/// remembers the next chunk before reading a chunk's entries, and a freed
/// chunk has no entries left to read.
pub(crate) struct Cursor {
    chunk: u32,
    next: u32,
    entry: u16,
}

impl Cursor {
    /// Before the oldest order of `level`.
    pub fn new(slab: &Slab, level: &Level) -> Cursor {
        let next = if level.head == NIL { NIL } else { slab.chunks[level.head as usize].next };
        Cursor { chunk: level.head, next, entry: 0 }
    }

    /// The next live slot, if any.
    pub fn next_slot(&mut self, slab: &Slab) -> Option<u32> {
        while self.chunk != NIL {
            let c = &slab.chunks[self.chunk as usize];
            while self.entry < c.used {
                let slot = c.slots[usize::from(self.entry)];
                self.entry += 1;
                if slot != NIL {
                    return Some(slot);
                }
            }
            (self.chunk, self.entry) = (self.next, 0);
            if self.chunk != NIL {
                self.next = slab.chunks[self.chunk as usize].next;
            }
        }
        None
    }
}

/// One price level: the chain of its queue's chunks and its totals.
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

impl Slab {
    /// The oldest order of a level, if any. Starts loading the order behind
    /// it: a walk that fills this one reaches it next.
    pub fn front(&self, level: &Level) -> Option<u32> {
        if level.head == NIL {
            return None;
        }
        // The head chunk holds a live entry (chunks that empty are unchained).
        let c = &self.chunks[level.head as usize];
        let used = usize::from(c.used);
        let first = c.slots[..used].iter().position(|&s| s != NIL)?;
        if let Some(&behind) = c.slots[first + 1..used].iter().find(|&&s| s != NIL) {
            self.prefetch(behind);
        }
        Some(c.slots[first])
    }

    /// Appends `slot` to the queue chained from `level`.
    fn enqueue(&mut self, level: &mut Level, slot: u32) {
        let tail_full = level.tail == NIL || usize::from(self.chunks[level.tail as usize].used) == ENTRIES;
        if tail_full {
            let fresh = self.take_chunk();
            self.chunks[fresh as usize].prev = level.tail;
            if level.tail == NIL {
                level.head = fresh;
            } else {
                self.chunks[level.tail as usize].next = fresh;
            }
            level.tail = fresh;
        }
        let chunk = &mut self.chunks[level.tail as usize];
        let entry = chunk.used;
        chunk.slots[usize::from(entry)] = slot;
        chunk.used += 1;
        chunk.live += 1;
        let order = &mut self.orders[slot as usize];
        (order.chunk, order.entry) = (level.tail, entry as u8);
    }

    /// Clears the entry of the order in `slot` from the queue chained from
    /// `level`; unchains and frees its chunk when that was its last live entry.
    fn dequeue(&mut self, level: &mut Level, slot: u32) {
        let order = &mut self.orders[slot as usize];
        let (index, entry) = (order.chunk, usize::from(order.entry));
        order.chunk = NIL;
        let chunk = &mut self.chunks[index as usize];
        debug_assert_eq!(chunk.slots[entry], slot, "queue entry of slot {slot} moved");
        chunk.slots[entry] = NIL;
        chunk.live -= 1;
        if chunk.live > 0 {
            return;
        }
        let (prev, next) = (chunk.prev, chunk.next);
        if prev == NIL {
            level.head = next;
        } else {
            self.chunks[prev as usize].next = next;
        }
        if next == NIL {
            level.tail = prev;
        } else {
            self.chunks[next as usize].prev = prev;
        }
        self.give_chunk(index);
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
        debug_assert!(self.best.is_none(), "a ladder reset with orders resting would leak their queue chunks");
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
        slab.enqueue(level, slot);
        level.qty += u64::from(qty.tonnes());
        level.count += 1;
        if level.count == 1 {
            self.mark(index);
        }
    }

    /// Takes the order in `slot` out of its level's queue (the slot stays allocated).
    pub fn unlink(&mut self, slab: &mut Slab, slot: u32) {
        let (price, qty) = {
            let o = slab.get(slot);
            (o.price, o.open)
        };
        let index = self.index(price);
        let level = &mut self.levels[index as usize];
        slab.dequeue(level, slot);
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
        self.levels_best_first()
            .take(levels)
            .find_map(|(_, level)| slab.queue(level).find(|&slot| slab.get(slot).id == id))
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
        let (mut chunk, mut prev, mut qty, mut count, mut chunks) = (level.head, NIL, 0u64, 0u32, 0u32);
        while chunk != NIL {
            let c = &slab.chunks[chunk as usize];
            ensure_eq!(c.prev, prev, "broken back link between chunks at {price}");
            let mut live = 0u16;
            for (entry, &slot) in c.slots[..usize::from(c.used)].iter().enumerate() {
                if slot == NIL {
                    continue;
                }
                let o = slab.get(slot);
                ensure_eq!((o.chunk, usize::from(o.entry)), (chunk, entry), "order {:?} misplaced in its queue", o.id);
                ensure!(!o.open.is_zero(), "zero-quantity order {:?} rests", o.id);
                ensure_eq!((o.price, o.side, o.instrument), (price, self.side, instrument), "misfiled {:?}", o.id);
                qty += u64::from(o.open.tonnes());
                live += 1;
            }
            ensure!(live > 0 && live == c.live, "chunk {chunk} at {price} counts {} live, holds {live}", c.live);
            count += u32::from(live);
            chunks += 1;
            ensure!(chunks <= level.count, "more chunks than orders (a cycle?) at {price}");
            prev = chunk;
            chunk = c.next;
        }
        ensure_eq!(level.tail, prev, "tail disagrees at {price}");
        ensure_eq!((level.qty, level.count), (qty, count), "level total disagrees at {price}");
        Ok(count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    const CEA: InstrumentId = InstrumentId::new(0);

    fn order(id: u64, price: u32, open: u32) -> Order {
        let price = Price::from_fen(price).expect("price");
        let (user, account) = (UserId::new(0), AccountId::new(1));
        let token = Token::from_bytes([b'a'; 14]);
        Order::new(OrderId::new(id), token, user, account, CEA, Side::Sell, price, Qty::new(open), b'A')
    }

    fn free_chunks(slab: &Slab) -> usize {
        let (mut n, mut chunk) = (0, slab.free_chunks);
        while chunk != NIL {
            (n, chunk) = (n + 1, slab.chunks[chunk as usize].next);
        }
        n
    }

    /// Queues at two prices against a `VecDeque` per level: pushes, cancels
    /// anywhere (whole chunks emptied in the middle, at the head, at the
    /// tail), reduces and moves, in a seeded random order. After each step
    /// the queues read back in the model's order, the invariants hold, and
    /// every chunk not chained is back in the pool.
    #[test]
    fn level_queues_keep_time_priority_and_return_every_chunk() {
        const CAPACITY: u32 = 200;
        let prices = [7_500, 7_501];
        let mut slab = Slab::with_capacity(CAPACITY);
        let mut ladder = Ladder::new(Side::Sell, Price::from_fen(7_490).unwrap(), Price::from_fen(7_510).unwrap());
        let mut model: [VecDeque<u32>; 2] = Default::default();
        let mut rng = carbonx_testkit::Rng::new(7);
        let mut next_id = 1;
        for step in 0..6_000 {
            let level = rng.below(2) as usize;
            let resting = model[0].len() + model[1].len();
            let pick = |rng: &mut carbonx_testkit::Rng, q: &VecDeque<u32>| q[rng.below(q.len() as u64) as usize];
            match rng.below(8) {
                0..=3 if !slab.is_full() && resting < CAPACITY as usize => {
                    let slot = slab.insert(order(next_id, prices[level], 1 + rng.below(9) as u32)).unwrap();
                    next_id += 1;
                    ladder.push_back(&mut slab, slot);
                    model[level].push_back(slot);
                }
                4..=5 if !model[level].is_empty() => {
                    let slot = pick(&mut rng, &model[level]);
                    ladder.unlink(&mut slab, slot);
                    slab.remove(slot);
                    model[level].retain(|&s| s != slot);
                }
                6 if !model[level].is_empty() => {
                    let slot = pick(&mut rng, &model[level]);
                    if slab.get(slot).open.tonnes() > 1 {
                        ladder.reduce(&mut slab, slot, Qty::new(1));
                    }
                }
                7 if !model[level].is_empty() => {
                    // A replace that loses priority: to the back of the other level.
                    let slot = pick(&mut rng, &model[level]);
                    ladder.unlink(&mut slab, slot);
                    slab.get_mut(slot).price = Price::from_fen(prices[1 - level]).unwrap();
                    ladder.push_back(&mut slab, slot);
                    model[level].retain(|&s| s != slot);
                    model[1 - level].push_back(slot);
                }
                _ => {}
            }
            for (price, queue) in prices.iter().zip(&model) {
                let level = ladder.level_at(ladder.index(Price::from_fen(*price).unwrap()));
                let read: Vec<u32> = slab.queue(level).collect();
                assert_eq!(read, Vec::from(queue.clone()), "step {step}: queue at {price}");
                assert_eq!(slab.front(level), queue.front().copied(), "step {step}: front at {price}");
            }
            let held = ladder.check_invariants(&slab, CEA).unwrap_or_else(|b| panic!("step {step}: {b:?}"));
            assert_eq!(held, slab.len());
            let chained: usize = prices
                .iter()
                .map(|p| {
                    let mut chunk = ladder.level_at(ladder.index(Price::from_fen(*p).unwrap())).head;
                    let mut n = 0;
                    while chunk != NIL {
                        (n, chunk) = (n + 1, slab.chunks[chunk as usize].next);
                    }
                    n
                })
                .sum();
            assert!(chained <= slab.len(), "step {step}: {chained} chunks for {} orders", slab.len());
            assert_eq!(chained + free_chunks(&slab), CAPACITY as usize, "step {step}: a chunk leaked");
        }
    }

    /// A drain's cursor survives the cancellation of the entry it stands on,
    /// including the one that frees its chunk.
    #[test]
    fn a_cursor_walks_on_while_its_orders_leave() {
        let mut slab = Slab::with_capacity(64);
        let mut ladder = Ladder::new(Side::Sell, Price::from_fen(7_490).unwrap(), Price::from_fen(7_510).unwrap());
        let slots: Vec<u32> = (0..40)
            .map(|id| {
                let slot = slab.insert(order(id + 1, 7_500, 5)).unwrap();
                ladder.push_back(&mut slab, slot);
                slot
            })
            .collect();
        let index = ladder.index(Price::from_fen(7_500).unwrap());
        let mut cursor = Cursor::new(&slab, ladder.level_at(index));
        let mut seen = Vec::new();
        while let Some(slot) = cursor.next_slot(&slab) {
            seen.push(slot);
            if slab.get(slot).id.get() % 3 != 0 {
                ladder.unlink(&mut slab, slot);
                slab.remove(slot);
            }
        }
        assert_eq!(seen, slots);
        let left: Vec<u32> = slab.queue(ladder.level_at(index)).collect();
        let expected: Vec<u32> = slots.iter().copied().filter(|&s| slab.get(s).id.get() % 3 == 0).collect();
        assert_eq!(left, expected);
        ladder.check_invariants(&slab, CEA).expect("invariants");
    }
}
