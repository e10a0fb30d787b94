//! A compact hash index from a key to an order's slab slot.
//!
//! Why not a `HashMap` sized for `orders_max`: with a million-order
//! capacity and a few thousand live orders, every lookup lands on a random
//! cache line of a table far bigger than the cache, and the whole engine
//! runs several times slower than with a table that fits in it. This index
//! stores only a slot and 32 bits of its key's hash per entry (the key
//! lives in the slab), keeps its load at most a quarter (a half once large)
//! in a logical size that doubles as orders arrive (at most one half once
//! the reserved memory is all in use), and rehashes inside memory reserved
//! at start, so it never allocates after construction.
//! Linear probing with backward-shift deletion leaves no tombstones, so
//! probes stay short.
//!
//! Why a quarter: a replace probes the index four times (the old token, the
//! new one's resend check, the removal's backward shift and the new
//! placement), so while the table still fits in cache, shorter probes are
//! what counts (the replace-heavy exchange-core mix is measurably slower at
//! a half). Why a half once the table is large (from 64 Ki entries,
//! 512 KB): then its size in the cache costs more than the probes (the
//! deep-book bench, with tens of thousands of orders, is faster at a half).

/// Smallest logical table size.
const SIZE_MIN: usize = 1 << 10;
/// From this logical size on (512 KB of entries) the load may reach one
/// half instead of a quarter (see the module's doc).
const SIZE_HALF_LOAD: usize = 1 << 16;
/// An empty entry.
const EMPTY: u64 = u64::MAX;

/// One entry: the slot in the low half, the top 32 bits of its key's hash
/// in the high half, so that probing and deletion never need the key.
fn entry(hash: u64, slot: u32) -> u64 {
    (hash & 0xFFFF_FFFF_0000_0000) | u64::from(slot)
}

fn slot_of(entry: u64) -> u32 {
    entry as u32
}

/// Slots indexed by a caller-computed 64-bit hash of their key.
pub(crate) struct SlotIndex {
    table: Vec<u64>,
    scratch: Vec<u64>,
    /// Logical size in use: a power of two, `table[..size]`.
    size: usize,
    /// `64 - log2(size)`: the hash's top bits pick the home position.
    shift: u32,
    items: usize,
}

impl SlotIndex {
    /// An index for at most `items_max` entries, all memory reserved now.
    pub fn new(items_max: u32) -> SlotIndex {
        let table_len = (2 * items_max as usize).next_power_of_two().max(SIZE_MIN);
        let size = SIZE_MIN.min(table_len);
        const _: () = assert!(crate::config::ORDERS_MAX_LIMIT as u64 * 2 <= 1 << 32);
        SlotIndex {
            table: vec![EMPTY; table_len],
            scratch: Vec::with_capacity(items_max as usize),
            size,
            shift: 64 - size.trailing_zeros(),
            items: 0,
        }
    }

    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    fn next(&self, i: usize) -> usize {
        (i + 1) & (self.size - 1)
    }

    /// The slot whose key hashes to `hash` and satisfies `is`.
    pub fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        let tag = hash & 0xFFFF_FFFF_0000_0000;
        let mut i = self.home(hash);
        loop {
            match self.table[i] {
                EMPTY => return None,
                e if e & 0xFFFF_FFFF_0000_0000 == tag && is(slot_of(e)) => return Some(slot_of(e)),
                _ => i = self.next(i),
            }
        }
    }

    /// Starts loading the home position of `hash` into the cache (a hint
    /// for a [`SlotIndex::find`] soon after).
    pub fn prefetch(&self, hash: u64) {
        crate::hint::prefetch(&self.table[self.home(hash)]);
    }

    /// Adds `slot` under `hash` (the caller guarantees it is not there yet).
    pub fn insert(&mut self, hash: u64, slot: u32) {
        let load_limit = if self.size < SIZE_HALF_LOAD { 4 } else { 2 };
        if load_limit * (self.items + 1) > self.size && self.size < self.table.len() {
            self.grow();
        }
        self.place(entry(hash, slot));
        self.items += 1;
    }

    fn place(&mut self, e: u64) {
        let mut i = self.home(e);
        while self.table[i] != EMPTY {
            i = self.next(i);
        }
        self.table[i] = e;
    }

    /// Doubles the logical size, reinserting every entry (within reserved memory).
    fn grow(&mut self) {
        self.scratch.clear();
        self.scratch.extend(self.table[..self.size].iter().copied().filter(|&e| e != EMPTY));
        self.table[..self.size].fill(EMPTY);
        self.size *= 2;
        self.shift -= 1;
        for k in 0..self.scratch.len() {
            let e = self.scratch[k];
            self.place(e);
        }
    }

    /// Moves `slot` from `old` to `new` (a replace's new token): one
    /// removal and one placement, with no growth check since the count
    /// stays the same.
    ///
    /// # Panics
    /// When `slot` is not in the index under `old` (a bug in the caller).
    pub fn rekey(&mut self, old: u64, new: u64, slot: u32) {
        self.take(old, slot);
        self.place(entry(new, slot));
    }

    /// Removes `slot`, stored under `hash`.
    ///
    /// # Panics
    /// When `slot` is not in the index (a bug in the caller).
    pub fn remove(&mut self, hash: u64, slot: u32) {
        self.take(hash, slot);
        self.items -= 1;
    }

    /// Empties the entry of `slot` under `hash` and shifts back the entries
    /// after it that would otherwise become unreachable (the count is the
    /// caller's).
    fn take(&mut self, hash: u64, slot: u32) {
        let wanted = entry(hash, slot);
        let mut hole = self.home(hash);
        while self.table[hole] != wanted {
            assert_ne!(self.table[hole], EMPTY, "slot {slot} not in the index");
            hole = self.next(hole);
        }
        self.table[hole] = EMPTY;
        let mut j = self.next(hole);
        while self.table[j] != EMPTY {
            let home = self.home(self.table[j]);
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.table[hole] = self.table[j];
                self.table[j] = EMPTY;
                hole = j;
            }
            j = self.next(j);
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.items
    }

    /// Every stored slot, in table order.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.table[..self.size].iter().copied().filter(|&e| e != EMPTY).map(slot_of)
    }
}

/// The secret of the index hashes: drawn at start by the server (the
/// engine, sans-IO, takes it from its configuration), so that a client
/// cannot choose tokens that share one probe chain. Nothing the engine
/// outputs depends on it: only where entries sit in the tables.
pub type IndexKey = [u64; 2];

/// The keyed hash of two words of a key: two folded 64×64→128-bit
/// multiplications (as aHash's fallback), the key mixed into both inputs.
/// Without the key, an attacker cannot compute which keys share a home
/// position; the fixed [`mix`] before it was invertible, so one could.
pub(crate) fn keyed(key: &IndexKey, a: u64, b: u64) -> u64 {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    let first = fold(a ^ key[0], b ^ key[1]);
    fold(first ^ key[1], K1 ^ key[0])
}

/// The high and low halves of the full product, xored.
fn fold(x: u64, y: u64) -> u64 {
    let product = u128::from(x) * u128::from(y);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The fixed (unkeyed, invertible) hash the indexes used before
/// [`keyed`]: kept for the test that shows how it could be attacked.
#[cfg(test)]
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    const K2: u64 = 0xBF58_476D_1CE4_E5B9;
    let h = (a.wrapping_mul(K1) ^ b.rotate_left(29)).wrapping_mul(K2);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The multiplicative inverse of an odd number modulo 2^64 (Newton).
    fn inverse(k: u64) -> u64 {
        (0..6).fold(k, |x, _| x.wrapping_mul(2u64.wrapping_sub(k.wrapping_mul(x))))
    }

    /// 1,000 first words `a` (with a fixed second word `b`) that an
    /// attacker computes by inverting [`mix`]: their unkeyed hashes are
    /// `0, 1, 2, ...`, so they share one home position in any table.
    fn colliding_under_mix(b: u64) -> Vec<u64> {
        const K1: u64 = 0x9E37_79B9_7F4A_7C15;
        const K2: u64 = 0xBF58_476D_1CE4_E5B9;
        let (inv1, inv2) = (inverse(K1), inverse(K2));
        (0..1_000u64).map(|target| (target.wrapping_mul(inv2) ^ b.rotate_left(29)).wrapping_mul(inv1)).collect()
    }

    #[test]
    fn tokens_chosen_to_collide_under_the_old_fixed_hash_spread_under_the_keyed_one() {
        let b = 0x4556_494c_3030;
        let chosen = colliding_under_mix(b);
        // Under the fixed hash every one lands in the same home of a
        // 1,024-entry table (the top 10 bits): each insert walks them all.
        let fixed: HashSet<u64> = chosen.iter().map(|&a| mix(a, b) >> 54).collect();
        assert_eq!(fixed.len(), 1);
        // Under the keyed hash they spread as random keys do (1,000 keys
        // into 1,024 homes fill about 640).
        let key = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
        let homes: HashSet<u64> = chosen.iter().map(|&a| keyed(&key, a, b) >> 54).collect();
        assert!(homes.len() > 550, "{} homes", homes.len());
    }

    /// Deliberately weak hashes, so that clusters and wrap-around happen.
    fn weak(slot: u32) -> u64 {
        u64::from(slot % 7) << 61
    }

    #[test]
    fn behaves_like_a_set_under_random_inserts_and_removes() {
        let mut index = SlotIndex::new(5_000);
        let mut model = HashSet::new();
        let mut x = 12_345u64;
        for _ in 0..200_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let slot = ((x >> 33) % 5_000) as u32;
            if model.contains(&slot) {
                index.remove(weak(slot), slot);
                model.remove(&slot);
            } else {
                index.insert(weak(slot), slot);
                model.insert(slot);
            }
            assert_eq!(index.find(weak(slot), |s| s == slot).is_some(), model.contains(&slot));
        }
        assert_eq!(index.len(), model.len());
        for slot in 0..5_000 {
            assert_eq!(index.find(weak(slot), |s| s == slot).is_some(), model.contains(&slot), "slot {slot}");
        }
        let mut stored: Vec<u32> = index.slots().collect();
        stored.sort_unstable();
        let mut expected: Vec<u32> = model.into_iter().collect();
        expected.sort_unstable();
        assert_eq!(stored, expected);
    }

    #[test]
    fn rekey_moves_a_slot_to_its_new_hash() {
        let mut index = SlotIndex::new(2_000);
        let mut key: Vec<u64> = (0..2_000).map(weak).collect();
        for slot in 0..2_000 {
            index.insert(key[slot as usize], slot);
        }
        let mut x = 99u64;
        for round in 0..50_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let slot = ((x >> 33) % 2_000) as u32;
            let new = (u64::from(slot % 5) << 61) | ((round % 3) << 40);
            index.rekey(key[slot as usize], new, slot);
            key[slot as usize] = new;
        }
        assert_eq!(index.len(), 2_000);
        for slot in 0..2_000u32 {
            assert_eq!(index.find(key[slot as usize], |s| s == slot), Some(slot), "slot {slot}");
        }
    }

    #[test]
    fn the_keyed_hash_depends_on_the_key_and_keeps_distinct_inputs_apart() {
        let (k1, k2) = ([1, 2], [3, 4]);
        assert_ne!(keyed(&k1, 5, 6), keyed(&k2, 5, 6));
        assert_eq!(keyed(&k1, 5, 6), keyed(&k1, 5, 6));
        // Inputs that differ in one bit land in different home positions
        // of a 1,024-entry table almost always.
        let homes: HashSet<u64> = (0..64).map(|bit| keyed(&k1, 1 << bit, 0) >> 54).collect();
        assert!(homes.len() > 50, "{}", homes.len());
    }

    #[test]
    fn grows_to_its_reserved_maximum_and_no_further() {
        let mut index = SlotIndex::new(3_000);
        for slot in 0..3_000 {
            index.insert(mix(u64::from(slot), 0), slot);
        }
        assert_eq!(index.size, index.table.len());
        assert!(2 * index.len() <= index.size);
        assert!((0..3_000).all(|s| index.find(mix(u64::from(s), 0), |x| x == s) == Some(s)));
    }

    #[test]
    fn a_prefetch_stays_inside_the_table_at_every_size() {
        let mut index = SlotIndex::new(1 << 17);
        for slot in 0..(1u32 << 17) {
            if slot.is_power_of_two() {
                for hash in [0, 1, u64::MAX, u64::MAX >> 1, mix(u64::from(slot), 7)] {
                    index.prefetch(hash); // indexes the table: out of bounds would panic
                    assert!(index.home(hash) < index.size, "a prefetch reads the logical table only");
                }
            }
            index.insert(mix(u64::from(slot), 1), slot);
        }
        assert_eq!(index.len(), 1 << 17, "a prefetch changes nothing");
    }
}
