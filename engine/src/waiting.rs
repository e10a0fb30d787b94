//! The block orders waiting for their counterparty, oldest first.
//!
//! Why not a `Vec` scanned per order: every block order asks twice (is
//! this account's deal already waiting? is its mirror waiting?) and a
//! match or cancel removes from the middle; blocks whose counterparty never
//! comes pile up all day (up to `blocks_max`), so scans and shifts would
//! grow with them on the engine thread. Here
//! each waiting order has a slot in a preallocated slab, linked in arrival
//! order (expiry, the kill switch, snapshots and the state hash walk it
//! oldest first), and two hash indexes answer the questions in
//! constant time: by token (cancels, resend checks) and by account and deal
//! id (duplicates, mirrors). Nothing allocates after construction.

use crate::block::BlockOrder;
use crate::engine::token_hash;
use crate::index::{IndexKey, SlotIndex, keyed};
use crate::types::{AccountId, Token, UserId};

/// No slot: the end of the arrival list.
const NIL: u32 = u32::MAX;

/// One slot: the order and its neighbours in arrival order.
#[derive(Clone, Copy)]
struct Slot {
    order: Option<BlockOrder>,
    older: u32,
    newer: u32,
}

/// The waiting block orders (see the module doc).
pub(crate) struct WaitingBlocks {
    slots: Vec<Slot>,
    free: Vec<u32>,
    oldest: u32,
    newest: u32,
    by_token: SlotIndex,
    by_deal: SlotIndex,
    len: usize,
    /// The secret of the index hashes.
    key: IndexKey,
}

fn deal_hash(key: &IndexKey, account: AccountId, deal_id: &[u8; 8]) -> u64 {
    keyed(key, u64::from(account.get()), u64::from_le_bytes(*deal_id))
}

impl WaitingBlocks {
    /// Room for `max` waiting orders, all memory reserved now.
    pub fn with_capacity(max: u32, key: IndexKey) -> WaitingBlocks {
        WaitingBlocks {
            slots: Vec::with_capacity(max as usize),
            free: Vec::with_capacity(max as usize),
            oldest: NIL,
            newest: NIL,
            by_token: SlotIndex::new(max),
            by_deal: SlotIndex::new(max),
            len: 0,
            key,
        }
    }

    /// Number of waiting orders.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when none waits (the usual case).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The order in `slot` (a slot a lookup returned).
    pub fn get(&self, slot: u32) -> &BlockOrder {
        self.slots[slot as usize].order.as_ref().expect("a live slot")
    }

    /// Appends `order` as the newest; its slot. The caller checked the
    /// capacity, and that no waiting order has its token or its account's
    /// deal id.
    pub fn push(&mut self, order: BlockOrder) -> u32 {
        debug_assert!(
            self.find_token(order.user, order.token).is_none(),
            "block token {:?} already waits",
            order.token
        );
        debug_assert!(
            self.find_deal(order.account, &order.deal_id).is_none(),
            "block deal of {:?} already waits",
            order.id
        );
        let entry = Slot { order: Some(order), older: self.newest, newer: NIL };
        let slot = match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slots[slot as usize].order.is_none(), "free slot {slot} holds an order");
                self.slots[slot as usize] = entry;
                slot
            }
            None => {
                debug_assert!(self.slots.len() < self.slots.capacity(), "capacity checked by the caller");
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        match self.newest {
            NIL => self.oldest = slot,
            newest => self.slots[newest as usize].newer = slot,
        }
        self.newest = slot;
        self.by_token.insert(token_hash(&self.key, order.user, &order.token), slot);
        self.by_deal.insert(deal_hash(&self.key, order.account, &order.deal_id), slot);
        self.len += 1;
        slot
    }

    /// Takes the order out of `slot`.
    pub fn remove(&mut self, slot: u32) -> BlockOrder {
        let Slot { order, older, newer } =
            std::mem::replace(&mut self.slots[slot as usize], Slot { order: None, older: NIL, newer: NIL });
        let order = order.expect("a live slot");
        match older {
            NIL => self.oldest = newer,
            older => self.slots[older as usize].newer = newer,
        }
        match newer {
            NIL => self.newest = older,
            newer => self.slots[newer as usize].older = older,
        }
        self.by_token.remove(token_hash(&self.key, order.user, &order.token), slot);
        self.by_deal.remove(deal_hash(&self.key, order.account, &order.deal_id), slot);
        self.free.push(slot);
        self.len -= 1;
        debug_assert!(
            (self.len == 0) == (self.oldest == NIL && self.newest == NIL),
            "arrival list and length disagree"
        );
        order
    }

    /// The slot of the waiting order named by `user`'s `token`.
    pub fn find_token(&self, user: UserId, token: Token) -> Option<u32> {
        if self.is_empty() {
            return None; // the usual case: every order asks
        }
        self.by_token.find(token_hash(&self.key, user, &token), |s| {
            let b = self.get(s);
            b.user == user && b.token == token
        })
    }

    /// The slot of `account`'s waiting order for deal `deal_id` (at most
    /// one waits: a second is rejected as a duplicate).
    pub fn find_deal(&self, account: AccountId, deal_id: &[u8; 8]) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        self.by_deal.find(deal_hash(&self.key, account, deal_id), |s| {
            let b = self.get(s);
            b.account == account && b.deal_id == *deal_id
        })
    }

    /// The oldest waiting order's slot.
    pub fn oldest(&self) -> Option<u32> {
        (self.oldest != NIL).then_some(self.oldest)
    }

    /// The slot of the order that arrived after the one in `slot`.
    pub fn newer(&self, slot: u32) -> Option<u32> {
        let newer = self.slots[slot as usize].newer;
        (newer != NIL).then_some(newer)
    }

    /// The waiting orders, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &BlockOrder> + '_ {
        std::iter::successors(self.oldest(), |&slot| self.newer(slot)).map(|slot| self.get(slot))
    }

    /// Both indexes hold exactly the listed orders (for `check_invariants`).
    pub fn indexes_agree(&self) -> bool {
        self.by_token.len() == self.len
            && self.by_deal.len() == self.len
            && self.iter().count() == self.len
            && self.iter().all(|b| {
                self.find_token(b.user, b.token).is_some_and(|s| self.get(s) == b)
                    && self.find_deal(b.account, &b.deal_id).is_some_and(|s| self.get(s) == b)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{InstrumentId, OrderId, Price, Qty, Side};
    use carbonx_testkit::Rng;

    fn order(id: u64, account: u32, deal: u64) -> BlockOrder {
        BlockOrder {
            id: OrderId::new(id),
            user: UserId::new((id % 7) as u16),
            token: Token::from_text(&format!("B{id}")).unwrap(),
            account: AccountId::new(account),
            counterparty: AccountId::new(account + 1),
            instrument: InstrumentId::new(0),
            side: Side::Buy,
            qty: Qty::new(100_000),
            price: Price::from_fen(7_463).unwrap(),
            deal_id: deal.to_le_bytes(),
        }
    }

    /// Random pushes, removals by token or deal, and oldest-first drains,
    /// against a `Vec` kept in arrival order (the structure this replaced).
    #[test]
    fn behaves_like_a_vec_in_arrival_order() {
        const MAX: u32 = 300;
        let mut waiting = WaitingBlocks::with_capacity(MAX, [1, 2]);
        let mut model: Vec<BlockOrder> = Vec::new();
        let mut rng = Rng::new(carbonx_testkit::seed("waiting blocks", 5));
        for id in 1..=60_000u64 {
            let roll = rng.next_u64() % 100;
            let (account, deal) = ((rng.next_u64() % 40) as u32, rng.next_u64() % 20);
            if roll < 55 {
                let duplicate = model.iter().any(|b| b.account.get() == account && b.deal_id == deal.to_le_bytes());
                assert_eq!(waiting.find_deal(AccountId::new(account), &deal.to_le_bytes()).is_some(), duplicate);
                if !duplicate && model.len() < MAX as usize {
                    waiting.push(order(id, account, deal));
                    model.push(order(id, account, deal));
                }
            } else if roll < 80 && !model.is_empty() {
                let victim = model[(rng.next_u64() % model.len() as u64) as usize];
                let slot = waiting.find_token(victim.user, victim.token).expect("waiting");
                assert_eq!(waiting.remove(slot), victim);
                model.retain(|b| b.id != victim.id);
            } else if roll < 99 {
                let found = waiting.find_deal(AccountId::new(account), &deal.to_le_bytes());
                let expected =
                    model.iter().find(|b| b.account.get() == account && b.deal_id == deal.to_le_bytes()).copied();
                assert_eq!(found.map(|s| *waiting.get(s)), expected);
                if let Some(slot) = found {
                    waiting.remove(slot);
                    model.retain(|b| Some(*b) != expected);
                }
            } else {
                // An oldest-first drain of one account, as the kill switch does.
                let mut cursor = waiting.oldest();
                let mut drained = Vec::new();
                while let Some(slot) = cursor {
                    cursor = waiting.newer(slot);
                    if waiting.get(slot).account.get() == account {
                        drained.push(waiting.remove(slot));
                    }
                }
                let expected: Vec<BlockOrder> = model.iter().filter(|b| b.account.get() == account).copied().collect();
                assert_eq!(drained, expected);
                model.retain(|b| b.account.get() != account);
            }
            assert_eq!(waiting.iter().copied().collect::<Vec<_>>(), model, "arrival order after order {id}");
            assert!(waiting.indexes_agree());
        }
    }

    #[test]
    fn an_unknown_token_or_deal_is_not_found() {
        let mut waiting = WaitingBlocks::with_capacity(4, [1, 2]);
        assert_eq!(waiting.find_token(UserId::new(1), Token::from_text("B1").unwrap()), None);
        let slot = waiting.push(order(1, 3, 9));
        let b = *waiting.get(slot);
        assert_eq!(waiting.find_token(b.user, b.token), Some(slot));
        assert_eq!(waiting.find_token(UserId::new(6), b.token), None, "another user's token");
        assert_eq!(waiting.find_deal(AccountId::new(4), &9u64.to_le_bytes()), None, "another account's deal");
        assert_eq!(waiting.find_deal(AccountId::new(3), &8u64.to_le_bytes()), None);
        assert_eq!(waiting.remove(slot), b);
        assert!(waiting.is_empty() && waiting.oldest().is_none() && waiting.indexes_agree());
    }
}
