//! The day's taken order tokens: the set the sequencer asks, for every
//! order, whether its `(user, token)` was already accepted today.
//!
//! Why not a `HashSet`: the set only grows during the day, to millions of
//! tokens on a busy one. A `HashSet` either rehashes everything at once
//! when it doubles (the engine thread stops for the whole rehash, every
//! order waiting behind it) or is reserved for millions at start, and then
//! every lookup of a quiet day lands on a random cache line (and page) of a
//! table far bigger than the cache, which slows replay down. This set starts
//! small and doubles *incrementally*: the new table is allocated at once
//! (zeroed memory, mapped lazily), and every insert after that moves a few
//! slots of the old table into it, so the old one is empty long before the
//! new one fills. No operation does more than a few probes' work.
//!
//! A key is 16 bytes, the user's number and the 14 token bytes, stored as
//! one `u128` in an open-addressing table with linear probing; nothing is
//! ever removed before the day's end, so there are no tombstones.

use carbonx_engine::hint::prefetch;
use carbonx_engine::{Token, UserId};

/// Slots of the first table: 1 MB, enough for a quiet day without growing.
const SLOTS_MIN: usize = 1 << 16;
/// Old-table slots moved to the new table per insert while growing. With
/// the load kept at most one half, the old table (half the new one's
/// slots) is drained after `slots / 2 / MOVED_PER_INSERT` inserts, well
/// before the new table reaches its own limit.
const MOVED_PER_INSERT: usize = 8;
/// An empty slot; the one key equal to it is kept in a flag instead.
const EMPTY: u128 = 0;

fn key(user: UserId, token: &Token) -> u128 {
    let mut bytes = [0u8; 16];
    bytes[..2].copy_from_slice(&user.get().to_be_bytes());
    bytes[2..].copy_from_slice(token.bytes());
    u128::from_be_bytes(bytes)
}

fn unkey(key: u128) -> (UserId, Token) {
    let bytes = key.to_be_bytes();
    let token: [u8; 14] = bytes[2..].try_into().expect("14 bytes");
    (UserId::new(u16::from_be_bytes([bytes[0], bytes[1]])), Token::from_bytes(token))
}

/// A secret of the set, drawn when it is made: the tokens are the
/// clients' choice, and with a fixed hash a client could compute tokens
/// that share one probe chain (the hash before this one was invertible),
/// making every insert walk all of them. Not journaled: which tokens are
/// taken never depends on it, only where they sit.
type Secret = [u64; 2];

/// A fresh secret from the operating system's randomness (through std's
/// randomly keyed SipHash).
fn fresh_secret() -> Secret {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    [state.hash_one(1u8), state.hash_one(2u8)]
}

/// A keyed hash whose top bits depend on every key bit (they pick the
/// slot): two folded 64×64→128-bit multiplications, the secret mixed into
/// both inputs.
fn hash(key: u128, secret: &Secret) -> u64 {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    let (high, low) = ((key >> 64) as u64, key as u64);
    let first = fold(low ^ secret[0], high ^ secret[1]);
    fold(first ^ secret[1], K1 ^ secret[0])
}

/// The high and low halves of the full product, xored.
fn fold(x: u64, y: u64) -> u64 {
    let product = u128::from(x) * u128::from(y);
    (product as u64) ^ ((product >> 64) as u64)
}

/// One open-addressing table of a power-of-two number of slots.
struct Table {
    slots: Vec<u128>,
    /// One bit per 4 KiB page of `slots`: whether any slot in it was ever
    /// written. A page never written holds only empty slots and is not
    /// read: reading maps the shared zero page, and the first write then
    /// copies it and flushes the TLB of every CPU the process runs on (a
    /// noticeable share of the sequencer thread's time at full load, and
    /// interrupts on the other cores). Written first, a page faults once.
    written: Vec<u64>,
    /// `64 - log2(slots)`: the hash's top bits pick the home slot.
    shift: u32,
    len: usize,
    /// The hash's secret (the same in both tables while doubling).
    secret: Secret,
}

/// Slots per 4 KiB page.
const SLOTS_PER_PAGE: usize = 4096 / std::mem::size_of::<u128>();

impl Table {
    fn new(slots: usize, secret: Secret) -> Table {
        debug_assert!(slots.is_power_of_two());
        let pages = slots.div_ceil(SLOTS_PER_PAGE);
        Table {
            slots: vec![EMPTY; slots],
            written: vec![0; pages.div_ceil(64)],
            shift: 64 - slots.trailing_zeros(),
            len: 0,
            secret,
        }
    }

    /// A table whose pages are all mapped now: zeroed memory is mapped
    /// lazily, and a page first read then written faults twice (the shared
    /// zero page, then its copy); writing one slot per page maps each once,
    /// here instead of in the middle of a replay.
    ///
    /// The table is also asked for 2 MiB pages: a replay reads it at random,
    /// and on 4 KiB pages a table bigger than the TLB's reach (a few MB)
    /// walks the page tables on most lookups, and a huge page takes one
    /// fault where small pages take hundreds. Only here, where every
    /// page is written at once: a table that fills during trading would
    /// zero a whole 2 MiB page on the sequencer thread at its first write.
    fn new_mapped(slots: usize, secret: Secret) -> Table {
        let mut table = Table::new(slots, secret);
        advise_huge_pages(&table.slots);
        for page in (0..slots).step_by(SLOTS_PER_PAGE) {
            table.set(page, std::hint::black_box(EMPTY));
        }
        table
    }

    fn page_written(&self, i: usize) -> bool {
        let page = i / SLOTS_PER_PAGE;
        self.written[page / 64] >> (page % 64) & 1 == 1
    }

    /// The key in slot `i` (`EMPTY` in a page never written, without reading it).
    fn slot(&self, i: usize) -> u128 {
        if self.page_written(i) { self.slots[i] } else { EMPTY }
    }

    fn set(&mut self, i: usize, key: u128) {
        let page = i / SLOTS_PER_PAGE;
        self.written[page / 64] |= 1 << (page % 64);
        self.slots[i] = key;
    }

    /// The keys stored in slots `from..`.
    fn keys_from(&self, from: usize) -> impl Iterator<Item = u128> + '_ {
        (from..self.slots.len()).map(|i| self.slot(i)).filter(|&k| k != EMPTY)
    }

    fn home(&self, key: u128) -> usize {
        (hash(key, &self.secret) >> self.shift) as usize
    }

    fn next(&self, i: usize) -> usize {
        (i + 1) & (self.slots.len() - 1)
    }

    /// Starts loading `key`'s home slot into the cache.
    fn prefetch(&self, key: u128) {
        let home = self.home(key);
        if self.page_written(home) {
            prefetch(&self.slots[home]);
        }
    }

    /// Where `key` is (`Ok`), or the empty slot its probe ends at (`Err`).
    fn probe(&self, key: u128) -> Result<usize, usize> {
        let mut i = self.home(key);
        loop {
            match self.slot(i) {
                EMPTY => return Err(i),
                k if k == key => return Ok(i),
                _ => i = self.next(i),
            }
        }
    }

    fn contains(&self, key: u128) -> bool {
        self.probe(key).is_ok()
    }

    /// Adds `key` unless present; whether it was added.
    fn insert(&mut self, key: u128) -> bool {
        let Err(vacant) = self.probe(key) else { return false };
        self.set(vacant, key);
        self.len += 1;
        true
    }

    /// Whether one more key would take the load past one half.
    fn full(&self) -> bool {
        2 * (self.len + 1) > self.slots.len()
    }
}

/// The set of `(user, token)` pairs taken today.
pub struct TakenTokens {
    table: Table,
    /// The table being drained into `table` after a doubling, and how many
    /// of its slots were moved. Its moved keys stay in place until it is
    /// dropped, so that its probe chains stay intact for lookups.
    draining: Option<(Table, usize)>,
    /// Whether the all-zero key (user 0, token of zero bytes) is taken.
    zero: bool,
    /// Keys taken, over both tables and the flag.
    len: usize,
}

impl Default for TakenTokens {
    fn default() -> Self {
        TakenTokens::new()
    }
}

impl TakenTokens {
    /// An empty set of the smallest size.
    pub fn new() -> TakenTokens {
        TakenTokens { table: Table::new(SLOTS_MIN, fresh_secret()), draining: None, zero: false, len: 0 }
    }

    /// An empty set with room for `tokens` without growing, its memory
    /// mapped now: for a replay, which knows from the journal's size about
    /// how many tokens the day took (growing and mapping pages on the way
    /// cost more than the replay's engine work).
    pub fn with_room(tokens: usize) -> TakenTokens {
        let slots = tokens.saturating_mul(2).next_power_of_two().max(SLOTS_MIN);
        TakenTokens { table: Table::new_mapped(slots, fresh_secret()), draining: None, zero: false, len: 0 }
    }

    /// Whether `user` already used `token` today.
    pub fn contains(&self, user: UserId, token: &Token) -> bool {
        let key = key(user, token);
        if key == EMPTY {
            return self.zero;
        }
        // A key already moved is in both tables: finding it in the old one is harmless.
        self.table.contains(key) || self.draining.as_ref().is_some_and(|(old, _)| old.contains(key))
    }

    /// Starts loading where `(user, token)` would be into the cache, so that
    /// a [`TakenTokens::contains`] a few commands later finds it there: a
    /// busy day's set is far larger than the cache, and the miss was the
    /// largest single cost of a replay.
    pub fn prefetch(&self, user: UserId, token: &Token) {
        let key = key(user, token);
        self.table.prefetch(key);
        if let Some((old, _)) = &self.draining {
            old.prefetch(key);
        }
    }

    /// Marks `token` taken for `user`; whether it was not yet.
    pub fn insert(&mut self, user: UserId, token: &Token) -> bool {
        let key = key(user, token);
        if key == EMPTY {
            let added = !std::mem::replace(&mut self.zero, true);
            self.len += usize::from(added);
            return added;
        }
        if self.draining.as_ref().is_some_and(|(old, _)| old.contains(key)) {
            return false;
        }
        self.drain_some();
        if self.table.full() {
            if self.table.contains(key) {
                return false;
            }
            self.start_doubling();
        }
        // The table's own insert finds the key if it is there already.
        let added = self.table.insert(key);
        self.len += usize::from(added);
        added
    }

    /// Forgets every token (a new trading day) and shrinks back to the
    /// smallest table.
    pub fn clear(&mut self) {
        *self = TakenTokens::new();
    }

    /// Forgets every token, keeping room for `tokens` (see [`TakenTokens::with_room`]).
    pub fn clear_with_room(&mut self, tokens: usize) {
        *self = if tokens == 0 { TakenTokens::new() } else { TakenTokens::with_room(tokens) };
    }

    /// How many tokens are taken.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every taken `(user, token)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (UserId, Token)> + '_ {
        let unmoved = self.draining.iter().flat_map(|(old, moved)| old.keys_from(*moved));
        let stored = self.table.keys_from(0);
        let zero = self.zero.then_some(EMPTY);
        stored.chain(unmoved).chain(zero).map(unkey)
    }

    fn start_doubling(&mut self) {
        // Never the case (see MOVED_PER_INSERT), but losing a key is worse
        // than one long insert.
        while self.draining.is_some() {
            self.drain_some();
        }
        let bigger = Table::new(2 * self.table.slots.len(), self.table.secret);
        let old = std::mem::replace(&mut self.table, bigger);
        self.draining = Some((old, 0));
    }

    /// Moves the next few slots of the draining table; drops it when done.
    fn drain_some(&mut self) {
        let Some((old, moved)) = &mut self.draining else { return };
        let end = (*moved + MOVED_PER_INSERT).min(old.slots.len());
        for i in *moved..end {
            let key = old.slot(i);
            if key != EMPTY {
                self.table.insert(key);
            }
        }
        *moved = end;
        if end == old.slots.len() {
            self.draining = None;
        }
    }
}

impl FromIterator<(UserId, Token)> for TakenTokens {
    fn from_iter<I: IntoIterator<Item = (UserId, Token)>>(pairs: I) -> Self {
        let mut set = TakenTokens::new();
        for (user, token) in pairs {
            set.insert(user, &token);
        }
        set
    }
}

/// Asks the kernel to back the 2 MiB-aligned stretches of `slots` with
/// huge pages when they are first written; whether it took the advice
/// (transparent huge pages may be off: then nothing changes but speed).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages(slots: &[u128]) -> bool {
    const PAGE: usize = 4096;
    let start = (slots.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (slots.as_ptr() as usize + std::mem::size_of_val(slots)) / PAGE * PAGE;
    if end <= start {
        return false;
    }
    // SAFETY: the range is the whole pages inside `slots`, memory this
    // table owns, and starts on a page boundary as madvise requires.
    // MADV_HUGEPAGE only changes how the pages are backed, never their
    // contents.
    let status = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    status == 0
}

/// Elsewhere, nothing: the table works the same on small pages.
#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_slots: &[u128]) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The fixed hash of the set before it was keyed: invertible, so a
    /// client could choose its tokens' slots.
    fn unkeyed(key: u128) -> u64 {
        const K1: u64 = 0x9E37_79B9_7F4A_7C15;
        const K2: u64 = 0xBF58_476D_1CE4_E5B9;
        let (high, low) = ((key >> 64) as u64, key as u64);
        (low.wrapping_mul(K1) ^ high.rotate_left(23)).wrapping_mul(K2)
    }

    /// The multiplicative inverse of an odd number modulo 2^64 (Newton).
    fn inverse(k: u64) -> u64 {
        (0..6).fold(k, |x, _| x.wrapping_mul(2u64.wrapping_sub(k.wrapping_mul(x))))
    }

    #[test]
    fn keys_chosen_to_collide_under_the_old_fixed_hash_spread_under_the_keyed_one() {
        const K1: u64 = 0x9E37_79B9_7F4A_7C15;
        const K2: u64 = 0xBF58_476D_1CE4_E5B9;
        // User 0, a token whose first 6 bytes are fixed (the high word)
        // and whose last 8 are solved so that the old hash is 0, 1, 2, ...
        let high = u64::from_be_bytes(*b"\0\0EVIL00");
        let chosen: Vec<u128> = (0..1_000u64)
            .map(|target| {
                let low = (target.wrapping_mul(inverse(K2)) ^ high.rotate_left(23)).wrapping_mul(inverse(K1));
                (u128::from(high) << 64) | u128::from(low)
            })
            .collect();
        let table = Table::new(1_024, [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210]);
        let old_homes: HashSet<u64> = chosen.iter().map(|&key| unkeyed(key) >> table.shift).collect();
        assert_eq!(old_homes.len(), 1, "the chosen keys shared one home under the fixed hash");
        let homes: HashSet<usize> = chosen.iter().map(|&key| table.home(key)).collect();
        assert!(homes.len() > 550, "{} homes", homes.len());
    }

    fn token(n: u64) -> Token {
        Token::from_text(&format!("t{n}")).expect("short")
    }

    #[test]
    fn agrees_with_a_hash_set_through_several_doublings() {
        let mut taken = TakenTokens::new();
        let mut model = HashSet::new();
        let mut x = 7u64;
        for _ in 0..300_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let (user, tok) = (UserId::new((x >> 60) as u16), token((x >> 33) % 200_000));
            assert_eq!(taken.contains(user, &tok), model.contains(&(user, tok)));
            assert_eq!(taken.insert(user, &tok), model.insert((user, tok)));
            assert!(taken.contains(user, &tok));
        }
        assert!(taken.table.slots.len() > SLOTS_MIN, "it doubled");
        assert_eq!(taken.len(), model.len());
        let listed: HashSet<(UserId, Token)> = taken.iter().collect();
        assert_eq!(listed, model);
        assert_eq!(taken.iter().count(), model.len(), "each key listed once");
    }

    #[test]
    fn every_key_is_found_in_the_middle_of_a_doubling() {
        let mut taken = TakenTokens::new();
        let mut n = 0;
        while taken.draining.is_none() {
            taken.insert(UserId::new(1), &token(n));
            n += 1;
        }
        for _ in 0..1_000 {
            taken.insert(UserId::new(1), &token(n));
            n += 1;
            assert!(taken.draining.is_some(), "still draining");
            assert!((0..n).all(|k| taken.contains(UserId::new(1), &token(k))));
            assert_eq!(taken.len(), n as usize);
        }
    }

    #[test]
    fn a_doubling_drains_before_the_new_table_fills() {
        let mut taken = TakenTokens::new();
        for n in 0..(4 * SLOTS_MIN as u64) {
            taken.insert(UserId::new(2), &token(n));
            assert!(2 * taken.table.len <= taken.table.slots.len());
        }
        assert_eq!(taken.len(), 4 * SLOTS_MIN);
    }

    #[test]
    fn a_set_with_room_never_doubles_before_its_room_is_used() {
        let room = 3 * SLOTS_MIN;
        let mut taken = TakenTokens::with_room(room);
        let slots = taken.table.slots.len();
        assert!(2 * room <= slots, "room at a load of at most one half");
        for n in 0..room as u64 {
            assert!(taken.insert(UserId::new(1), &token(n)));
            assert!(taken.draining.is_none(), "doubled after {n} of {room} tokens");
        }
        assert_eq!(taken.table.slots.len(), slots);
        assert!((0..room as u64).all(|n| taken.contains(UserId::new(1), &token(n))));
        // Past its room it grows as any set does, losing nothing.
        for n in room as u64..(2 * room) as u64 {
            assert!(taken.insert(UserId::new(1), &token(n)));
        }
        assert_eq!(taken.len(), 2 * room);
        assert!((0..2 * room as u64).all(|n| taken.contains(UserId::new(1), &token(n))));
        taken.clear_with_room(10);
        assert!(taken.is_empty());
        assert_eq!(taken.table.slots.len(), SLOTS_MIN, "small room, smallest table");
        assert!(!taken.contains(UserId::new(1), &token(0)));
    }

    #[test]
    fn lookups_never_touch_a_page_no_insert_wrote() {
        let pages_written = |t: &Table| t.written.iter().map(|w| w.count_ones()).sum::<u32>();
        let mut taken = TakenTokens::new();
        assert_eq!(pages_written(&taken.table), 0);
        assert!(taken.insert(UserId::new(4), &token(7)));
        assert_eq!(pages_written(&taken.table), 1);
        for n in 0..10_000 {
            assert_eq!(taken.contains(UserId::new(4), &token(n)), n == 7);
            taken.prefetch(UserId::new(4), &token(n));
        }
        assert_eq!(pages_written(&taken.table), 1, "lookups wrote nothing");
        assert_eq!(taken.iter().collect::<Vec<_>>(), vec![(UserId::new(4), token(7))]);
        let mapped = TakenTokens::with_room(SLOTS_MIN);
        assert_eq!(pages_written(&mapped.table) as usize, mapped.table.slots.len() / SLOTS_PER_PAGE);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_replay_table_is_offered_to_huge_pages_where_the_kernel_has_them() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        let table = Table::new_mapped(1 << 20, fresh_secret());
        if thp.contains('[') {
            assert!(advise_huge_pages(&table.slots), "the kernel supports huge pages ({thp}) but refused the advice");
        }
        assert!(!advise_huge_pages(&table.slots[..1]), "less than a page: nothing to advise");
    }

    #[test]
    fn the_all_zero_key_and_the_day_end() {
        let mut taken = TakenTokens::new();
        let zero = Token::from_bytes([0; 14]);
        assert!(!taken.contains(UserId::new(0), &zero));
        assert!(taken.insert(UserId::new(0), &zero));
        assert!(!taken.insert(UserId::new(0), &zero));
        assert!(taken.contains(UserId::new(0), &zero));
        assert!(!taken.contains(UserId::new(1), &zero));
        assert!(taken.insert(UserId::new(u16::MAX), &token(1)));
        let listed: HashSet<(UserId, Token)> = taken.iter().collect();
        assert_eq!(listed, HashSet::from([(UserId::new(0), zero), (UserId::new(u16::MAX), token(1))]));
        taken.clear();
        assert!(taken.is_empty());
        assert!(!taken.contains(UserId::new(0), &zero));
    }
}
