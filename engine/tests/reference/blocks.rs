//! The model's block agreement orders: waiting orders matched with their
//! mirror (opposite side, each naming the other, same deal).

use super::*;

/// A waiting block order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefBlock {
    pub(crate) id: u64,
    pub(crate) user: u16,
    pub(crate) token: [u8; 14],
    pub(crate) account: u32,
    pub(crate) counterparty: u32,
    pub(crate) book: usize,
    pub(crate) side: Side,
    pub(crate) qty: u32,
    pub(crate) price: u32,
    pub(crate) deal: [u8; 8],
}

impl RefBlock {
    fn lock(&self) -> Lock {
        Lock { account: self.account, book: self.book, side: self.side, qty: self.qty, price: self.price }
    }
}

impl Model {
    /// A block order: checks in the engine's documented order, accept,
    /// lock, then trade with the earliest waiting mirror or wait.
    pub(crate) fn new_block(&mut self, c: &NewBlock, out: &mut Vec<Event>) {
        let (user, token) = (c.user.get(), *c.token.bytes());
        if self.token_live(user, token) {
            return;
        }
        let (book, price) = match self.check_block(c) {
            Ok(v) => v,
            Err(reason) => return out.push(Event::Rejected { user: c.user, token: c.token, reason }),
        };
        let id = self.take_id();
        out.push(Event::Accepted(OrderInfo {
            method: Method::Block,
            user: c.user,
            token: c.token,
            id: OrderId::new(id),
            account: c.account,
            instrument: InstrumentId::new(book as u8),
            side: c.side,
            qty: c.qty,
            wire_price: c.price,
            tif: 99_999,
            display: b'Y',
            capacity: b'A',
            min_qty: 0,
        }));
        let (account, counterparty, side, qty, deal) =
            (c.account.get(), c.counterparty.expect("validated").get(), c.side, c.qty.tonnes(), c.deal_id);
        let order = RefBlock { id, user, token, account, counterparty, book, side, qty, price, deal };
        self.lock(&order.lock());
        let mirror = |w: &RefBlock| {
            w.book == book
                && w.price == price
                && w.qty == qty
                && w.deal == deal
                && w.side != side
                && w.account == counterparty
                && w.counterparty == account
        };
        match self.blocks.iter().position(mirror) {
            Some(i) => {
                let maker = self.blocks.remove(i);
                self.trade_blocks(&maker, &order, out);
            }
            None => self.blocks.push(order),
        }
    }

    fn check_block(&self, c: &NewBlock) -> Result<(usize, u32), RejectReason> {
        if !self.known(c.account.get()) {
            return Err(RejectReason::NotEntitled);
        }
        if c.qty.tonnes() < self.block_qty_min {
            return Err(RejectReason::InvalidQty);
        }
        let book = self.books.iter().position(|b| b.code == c.stock).ok_or(RejectReason::UnknownStock)?;
        if c.price % 100 != 0 || c.price / 100 == 0 || c.price / 100 > 999_999 {
            return Err(RejectReason::InvalidPrice);
        }
        let price = c.price / 100;
        let duplicate = self.blocks.iter().any(|b| b.account == c.account.get() && b.deal == c.deal_id);
        let Some(counterparty) = c.counterparty else {
            return Err(RejectReason::InvalidField);
        };
        if counterparty == c.account || !self.known(counterparty.get()) || duplicate {
            return Err(RejectReason::InvalidField);
        }
        if self.books[book].halted {
            return Err(RejectReason::Halted);
        }
        let (lower, upper) = band(self.books[book].reference, self.block_band_pct);
        if price < lower || price > upper {
            return Err(RejectReason::OutsideBand);
        }
        self.risk(&Lock { account: c.account.get(), book, side: c.side, qty: c.qty.tonnes(), price })?;
        if self.blocks.len() >= self.blocks_max {
            return Err(RejectReason::CapacityFull);
        }
        Ok((book, price))
    }

    fn trade_blocks(&mut self, maker: &RefBlock, taker: &RefBlock, out: &mut Vec<Event>) {
        if let Some(a) = &mut self.accounts {
            a.settle(&maker.lock(), &taker.lock(), taker.qty, taker.price);
        }
        record(&mut self.books[taker.book].block_tally, taker.price, taker.qty);
        let match_id = MatchId::new(self.next_match);
        self.next_match += 1;
        let party = |b: &RefBlock| Party {
            user: UserId::new(b.user),
            token: tok(b.token),
            id: OrderId::new(b.id),
            account: AccountId::new(b.account),
        };
        out.push(Event::Executed(Execution {
            method: Method::Block,
            instrument: InstrumentId::new(taker.book as u8),
            match_id,
            price: price(taker.price),
            qty: Qty::new(taker.qty),
            taker_side: taker.side,
            maker: party(maker),
            taker: party(taker),
        }));
    }

    /// A cancel naming no listing order: a waiting block is cancelled in
    /// full (a reduce is refused); anything else is a Cancel Reject.
    pub(crate) fn cancel_block(&mut self, c: &Cancel, out: &mut Vec<Event>) {
        if let Some((a, j)) = self.find_bid(c.user.get(), *c.token.bytes()) {
            let bid = self.auctions[a].bids[j];
            if c.qty.tonnes() != 0 && c.qty.tonnes() >= bid.qty {
                return out.push(Event::CancelRejected { user: c.user, token: c.token });
            }
            return self.take_from_bid(a, j, bid.qty - c.qty.tonnes(), CancelReason::User, out);
        }
        let found = self.blocks.iter().position(|b| b.user == c.user.get() && b.token == *c.token.bytes());
        match found {
            Some(i) if c.qty.is_zero() => self.remove_block(i, CancelReason::User, out),
            _ => out.push(Event::CancelRejected { user: c.user, token: c.token }),
        }
    }

    fn remove_block(&mut self, i: usize, reason: CancelReason, out: &mut Vec<Event>) {
        let b = self.blocks.remove(i);
        self.release(&b.lock());
        let (user, token, id, decrement) = (UserId::new(b.user), tok(b.token), OrderId::new(b.id), Qty::new(b.qty));
        out.push(Event::Cancelled { user, token, id, decrement, reason });
    }

    /// Cancels matching waiting blocks, oldest first.
    pub(crate) fn drain_blocks(
        &mut self,
        pred: impl Fn(&RefBlock) -> bool,
        reason: CancelReason,
        out: &mut Vec<Event>,
    ) {
        let mut i = 0;
        while i < self.blocks.len() {
            if pred(&self.blocks[i]) {
                self.remove_block(i, reason, out);
            } else {
                i += 1;
            }
        }
    }
}
