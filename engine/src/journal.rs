//! The journal record codec: how one sequenced command is laid out on disk.
//!
//! Sans-IO like the rest of the crate: this module turns a [`Record`] into
//! bytes and back; the file writer (group commit, `fdatasync`) lives in the
//! `carbonx` binary. Layout, all integers big-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | length of everything after this field, checksum included |
//! | 8 | sequence number |
//! | 8 | timestamp (ns since the epoch) |
//! | 1 + n | command: a tag byte and the command's fixed-size fields |
//! | 4 | CRC32C of sequence number, timestamp and command |
//!
//! Why a length first: a reader can tell a torn tail (the file ends inside
//! a record: the crash happened mid-write, truncate it) from corruption in
//! the middle (a full-length record whose checksum fails: stop and say
//! where).

use crate::command::{
    AnnounceAuction, Asset, AuctionBid, Cancel, Command, Delisting, FloorRule, GatewayReject, Listing, NewBlock,
    NewOrder, Pick, Pricing, Replace, Transfer,
};
use crate::event::RejectReason;
use crate::types::{
    AccountId, AuctionId, InstrumentId, OrderId, Price, Qty, Seq, Side, StockCode, Timestamp, Token, UserId,
};

/// Largest encoded record: length field plus the largest command plus framing.
pub const RECORD_LEN_MAX: usize = 4 + 8 + 8 + 1 + 64 + 4;
const HEADER_LEN: usize = 4;
const FIXED_LEN: usize = 8 + 8 + 4; // sequence, timestamp, checksum
/// The shortest record of a command that can take an order token (a new
/// order, replace, block, pick or auction bid; a pick's body, 41 bytes, is
/// the shortest): a journal of `n` bytes took at most `n /
/// TOKEN_RECORD_LEN_MIN` tokens.
pub const TOKEN_RECORD_LEN_MIN: usize = HEADER_LEN + FIXED_LEN + 1 + 41;

/// One journaled command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the command stream, from 1 each day.
    pub seq: Seq,
    /// The time the sequencer gave the command.
    pub timestamp: Timestamp,
    /// The command.
    pub command: Command,
}

/// A record that cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JournalError {
    /// The length field is below the smallest or above the largest record.
    #[error("record length {0} out of range")]
    BadLength(u32),
    /// The checksum does not match the bytes: corruption.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadChecksum {
        /// The checksum in the record.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// An unknown command tag.
    #[error("unknown command tag {0}")]
    UnknownTag(u8),
    /// A command whose fields do not decode (wrong size, bad letter).
    #[error("malformed {0} command")]
    Malformed(&'static str),
}

/// Appends the encoding of `record` to `out` and returns its length.
pub fn encode(record: &Record, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    out.extend_from_slice(&record.seq.get().to_be_bytes());
    out.extend_from_slice(&record.timestamp.nanos().to_be_bytes());
    encode_command(&record.command, out);
    let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    out.extend_from_slice(&crc.to_be_bytes());
    let len = u32::try_from(out.len() - start - HEADER_LEN).expect("record fits u32");
    out[start..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    out.len() - start
}

/// Decodes the record at the start of `bytes`.
///
/// Returns `Ok(None)` when `bytes` ends before the record does (a torn
/// tail, or more bytes needed), else the record and its encoded length.
///
/// # Errors
/// [`JournalError`] when the bytes are there but wrong.
pub fn decode(bytes: &[u8]) -> Result<Option<(Record, usize)>, JournalError> {
    let Some(len_bytes) = bytes.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(len_bytes.try_into().expect("4 bytes"));
    let body_len = len as usize;
    if body_len < FIXED_LEN + 1 || HEADER_LEN + body_len > RECORD_LEN_MAX {
        return Err(JournalError::BadLength(len));
    }
    let Some(body) = bytes.get(HEADER_LEN..HEADER_LEN + body_len) else {
        return Ok(None);
    };
    let (data, crc) = body.split_at(body_len - 4);
    let stored = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(data);
    if stored != computed {
        return Err(JournalError::BadChecksum { stored, computed });
    }
    let mut r = Reader(data);
    let seq = Seq::new(r.u64());
    let timestamp = Timestamp::from_nanos(r.u64());
    let command = decode_command(r.0)?;
    Ok(Some((Record { seq, timestamp, command }, HEADER_LEN + body_len)))
}

fn encode_command(command: &Command, out: &mut Vec<u8>) {
    match command {
        Command::NewOrder(o) => {
            out.push(1);
            put_new_order(o, out);
        }
        Command::Cancel(c) => {
            out.push(2);
            out.extend_from_slice(&c.user.get().to_be_bytes());
            out.extend_from_slice(c.token.bytes());
            out.extend_from_slice(&c.qty.tonnes().to_be_bytes());
        }
        Command::Replace(r) => {
            out.push(3);
            put_replace(r, out);
        }
        Command::NewBlock(b) => {
            out.push(10);
            put_block(b, out);
        }
        Command::Pick(p) => {
            out.push(11);
            out.extend_from_slice(&p.user.get().to_be_bytes());
            out.extend_from_slice(p.token.bytes());
            out.extend_from_slice(&p.account.get().to_be_bytes());
            out.push(p.side.letter());
            out.extend_from_slice(&p.qty.tonnes().to_be_bytes());
            out.extend_from_slice(p.stock.bytes());
            out.extend_from_slice(&p.target.get().to_be_bytes());
        }
        Command::Clock => out.push(4),
        Command::Roll => out.push(5),
        Command::Halt(i) => out.extend_from_slice(&[6, i.index() as u8]),
        Command::Resume(i) => out.extend_from_slice(&[7, i.index() as u8]),
        Command::CancelAccount(a) => {
            out.push(8);
            out.extend_from_slice(&a.get().to_be_bytes());
        }
        Command::CancelUser(u) => {
            out.push(12);
            out.extend_from_slice(&u.get().to_be_bytes());
        }
        Command::Transfer(t) => {
            out.push(13);
            out.extend_from_slice(&t.request.to_be_bytes());
            out.extend_from_slice(&t.account.get().to_be_bytes());
            out.push(match t.asset {
                Asset::Cash => ASSET_CASH,
                Asset::Holding(i) => i.index() as u8,
            });
            out.extend_from_slice(&t.amount.to_be_bytes());
        }
        Command::AnnounceAuction(a) => {
            out.push(14);
            put_announcement(a, out);
        }
        Command::AuctionBid(b) => {
            out.push(15);
            put_auction_bid(b, out);
        }
        Command::Reject(g) => {
            out.push(9);
            out.extend_from_slice(&g.user.get().to_be_bytes());
            out.extend_from_slice(g.token.bytes());
            out.push(g.reason.letter());
            out.push(u8::from(g.names_new_token));
        }
        Command::List(_) | Command::Delist(_) => put_reference_data(command, out),
    }
}

/// Tags 16 and 17 came with the operator's reference data (RULES §1.3):
/// new tags only, so every older journal decodes as before.
fn put_reference_data(command: &Command, out: &mut Vec<u8>) {
    match command {
        Command::List(l) => {
            out.push(16);
            out.extend_from_slice(&l.request.to_be_bytes());
            out.extend_from_slice(l.stock.bytes());
            out.extend_from_slice(&l.prev_close.fen().to_be_bytes());
        }
        Command::Delist(d) => {
            out.push(17);
            out.extend_from_slice(&d.request.to_be_bytes());
            out.extend_from_slice(d.stock.bytes());
        }
        _ => {}
    }
}

fn put_new_order(o: &NewOrder, out: &mut Vec<u8>) {
    out.extend_from_slice(&o.user.get().to_be_bytes());
    out.extend_from_slice(o.token.bytes());
    out.extend_from_slice(&o.account.get().to_be_bytes());
    out.push(o.side.letter());
    out.extend_from_slice(&o.qty.tonnes().to_be_bytes());
    out.extend_from_slice(o.stock.bytes());
    for value in [o.price, o.tif] {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out.extend_from_slice(&[o.display, o.capacity]);
    out.extend_from_slice(&o.min_qty.to_be_bytes());
    out.extend_from_slice(&[o.cross_type, o.iso]);
}

fn put_block(b: &NewBlock, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.user.get().to_be_bytes());
    out.extend_from_slice(b.token.bytes());
    out.extend_from_slice(&b.account.get().to_be_bytes());
    out.extend_from_slice(&b.counterparty.map_or(NO_ACCOUNT, AccountId::get).to_be_bytes());
    out.push(b.side.letter());
    out.extend_from_slice(&b.qty.tonnes().to_be_bytes());
    out.extend_from_slice(b.stock.bytes());
    out.extend_from_slice(&b.price.to_be_bytes());
    out.extend_from_slice(&b.deal_id);
}

/// Pricing letters in the journal: `U` uniform, `P` pay-as-bid.
const PRICING: [(Pricing, u8); 2] = [(Pricing::Uniform, b'U'), (Pricing::PayAsBid, b'P')];
/// Floor rule letters in the journal: `C` previous close, `M` minus 10%.
const FLOOR: [(FloorRule, u8); 2] = [(FloorRule::PreviousClose, b'C'), (FloorRule::PreviousCloseMinus10, b'M')];

fn put_announcement(a: &AnnounceAuction, out: &mut Vec<u8>) {
    out.extend_from_slice(a.id.bytes());
    out.extend_from_slice(a.stock.bytes());
    out.extend_from_slice(&a.seller.get().to_be_bytes());
    out.extend_from_slice(&a.seller_user.get().to_be_bytes());
    out.extend_from_slice(&a.qty.tonnes().to_be_bytes());
    out.extend_from_slice(&a.start.nanos().to_be_bytes());
    out.extend_from_slice(&a.end.nanos().to_be_bytes());
    out.push(PRICING.iter().find(|(p, _)| *p == a.pricing).map_or(b'?', |(_, l)| *l));
    out.push(FLOOR.iter().find(|(f, _)| *f == a.floor).map_or(b'?', |(_, l)| *l));
}

fn get_announcement(mut r: Reader<'_>) -> Result<AnnounceAuction, JournalError> {
    let (id, stock) = (AuctionId::from_bytes(r.take()), StockCode::from_bytes(r.take()));
    let (seller, seller_user, qty) = (AccountId::new(r.u32()), UserId::new(r.u16()), Qty::new(r.u32()));
    let (start, end) = (Timestamp::from_nanos(r.u64()), Timestamp::from_nanos(r.u64()));
    let bad = || JournalError::Malformed("auction announcement");
    let (pricing_letter, floor_letter) = (r.u8(), r.u8());
    let pricing = PRICING.iter().find(|(_, l)| *l == pricing_letter).ok_or_else(bad)?.0;
    let floor = FLOOR.iter().find(|(_, l)| *l == floor_letter).ok_or_else(bad)?.0;
    Ok(AnnounceAuction { id, stock, seller, seller_user, qty, start, end, pricing, floor })
}

fn put_auction_bid(b: &AuctionBid, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.user.get().to_be_bytes());
    out.extend_from_slice(b.token.bytes());
    out.extend_from_slice(&b.account.get().to_be_bytes());
    out.extend_from_slice(&b.qty.tonnes().to_be_bytes());
    out.extend_from_slice(b.stock.bytes());
    out.extend_from_slice(&b.price.to_be_bytes());
    out.extend_from_slice(b.auction.bytes());
}

fn get_auction_bid(mut r: Reader<'_>) -> AuctionBid {
    let (user, token, account) = (UserId::new(r.u16()), r.token(), AccountId::new(r.u32()));
    let (qty, stock, price) = (Qty::new(r.u32()), StockCode::from_bytes(r.take()), r.u32());
    AuctionBid { user, token, account, qty, stock, price, auction: AuctionId::from_bytes(r.take()) }
}

fn put_replace(r: &Replace, out: &mut Vec<u8>) {
    out.extend_from_slice(&r.user.get().to_be_bytes());
    out.extend_from_slice(r.token.bytes());
    out.extend_from_slice(r.new_token.bytes());
    for value in [r.qty.tonnes(), r.price, r.tif] {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out.push(r.display);
    out.extend_from_slice(&r.min_qty.to_be_bytes());
    out.push(r.iso);
}

/// A cursor over a slice whose length was checked beforehand.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().expect("length checked")
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }
    fn token(&mut self) -> Token {
        Token::from_bytes(self.take())
    }
}

/// A transfer's asset byte for cash (instruments are their index).
const ASSET_CASH: u8 = 0xFF;
/// A block order's counterparty when its code names no account.
const NO_ACCOUNT: u32 = u32::MAX;

fn decode_command(bytes: &[u8]) -> Result<Command, JournalError> {
    let (&tag, body) = bytes.split_first().ok_or(JournalError::Malformed("empty"))?;
    let expect = |name: &'static str, len: usize| {
        if body.len() == len { Ok(Reader(body)) } else { Err(JournalError::Malformed(name)) }
    };
    Ok(match tag {
        // Without the trailing sweep byte: journaled before the engine
        // checked it (every such order carried `N`).
        1 => Command::NewOrder(get_new_order(expect("new order", 49).or_else(|_| expect("new order", 48))?)?),
        2 => {
            let mut r = expect("cancel", 20)?;
            Command::Cancel(Cancel { user: UserId::new(r.u16()), token: r.token(), qty: Qty::new(r.u32()) })
        }
        3 => Command::Replace(get_replace(expect("replace", 48).or_else(|_| expect("replace", 47))?)),
        4 => expect("clock", 0).map(|_| Command::Clock)?,
        5 => expect("roll", 0).map(|_| Command::Roll)?,
        6 => Command::Halt(InstrumentId::new(expect("halt", 1)?.u8())),
        7 => Command::Resume(InstrumentId::new(expect("resume", 1)?.u8())),
        8 => Command::CancelAccount(AccountId::new(expect("cancel account", 4)?.u32())),
        9 => Command::Reject(get_reject(body)?),
        10 => Command::NewBlock(get_block(expect("block", 49)?)?),
        11 => Command::Pick(get_pick(expect("pick", 41)?)?),
        12 => Command::CancelUser(UserId::new(expect("cancel user", 2)?.u16())),
        13 => {
            let mut r = expect("transfer", 21)?;
            let (request, account, asset) = (r.u64(), AccountId::new(r.u32()), r.u8());
            let asset = if asset == ASSET_CASH { Asset::Cash } else { Asset::Holding(InstrumentId::new(asset)) };
            Command::Transfer(Transfer { request, account, asset, amount: r.u64() as i64 })
        }
        14 => Command::AnnounceAuction(get_announcement(expect("auction announcement", 44)?)?),
        15 => Command::AuctionBid(get_auction_bid(expect("auction bid", 44)?)),
        16 => {
            let mut r = expect("listing", 20)?;
            let (request, stock) = (r.u64(), StockCode::from_bytes(r.take()));
            let prev_close = Price::from_fen(r.u32()).ok_or(JournalError::Malformed("listing"))?;
            Command::List(Listing { request, stock, prev_close })
        }
        17 => {
            let mut r = expect("delisting", 16)?;
            Command::Delist(Delisting { request: r.u64(), stock: StockCode::from_bytes(r.take()) })
        }
        other => return Err(JournalError::UnknownTag(other)),
    })
}

/// A gateway reject: 18 bytes, or 17 as journaled before rejects named
/// their new token (those were never ignored as resends, and replay the same).
fn get_reject(body: &[u8]) -> Result<GatewayReject, JournalError> {
    if !matches!(body.len(), 17 | 18) {
        return Err(JournalError::Malformed("reject"));
    }
    let mut r = Reader(body);
    let (user, token) = (UserId::new(r.u16()), r.token());
    let reason = RejectReason::from_letter(r.u8()).ok_or(JournalError::Malformed("reject"))?;
    let names_new_token = match r.0 {
        [] | [0] => false,
        [1] => true,
        _ => return Err(JournalError::Malformed("reject")),
    };
    Ok(GatewayReject { user, token, reason, names_new_token })
}

fn get_new_order(mut r: Reader<'_>) -> Result<NewOrder, JournalError> {
    let (user, token, account) = (UserId::new(r.u16()), r.token(), AccountId::new(r.u32()));
    let side = side(r.u8(), "new order")?;
    let qty = Qty::new(r.u32());
    let stock = StockCode::from_bytes(r.take());
    let (price, tif) = (r.u32(), r.u32());
    let (display, capacity, min_qty, cross_type) = (r.u8(), r.u8(), r.u32(), r.u8());
    let iso = r.0.first().copied().unwrap_or(b'N');
    Ok(NewOrder { user, token, account, side, qty, stock, price, tif, display, capacity, iso, min_qty, cross_type })
}

fn side(letter: u8, what: &'static str) -> Result<Side, JournalError> {
    match letter {
        b'B' => Ok(Side::Buy),
        b'S' => Ok(Side::Sell),
        _ => Err(JournalError::Malformed(what)),
    }
}

fn get_block(mut r: Reader<'_>) -> Result<NewBlock, JournalError> {
    let (user, token) = (UserId::new(r.u16()), r.token());
    let account = AccountId::new(r.u32());
    let counterparty = Some(r.u32()).filter(|&c| c != NO_ACCOUNT).map(AccountId::new);
    let side = side(r.u8(), "block")?;
    let (qty, stock, price) = (Qty::new(r.u32()), StockCode::from_bytes(r.take()), r.u32());
    Ok(NewBlock { user, token, account, counterparty, side, qty, stock, price, deal_id: r.take() })
}

fn get_pick(mut r: Reader<'_>) -> Result<Pick, JournalError> {
    let (user, token, account) = (UserId::new(r.u16()), r.token(), AccountId::new(r.u32()));
    let side = side(r.u8(), "pick")?;
    let (qty, stock) = (Qty::new(r.u32()), StockCode::from_bytes(r.take()));
    Ok(Pick { user, token, account, side, qty, stock, target: OrderId::new(r.u64()) })
}

fn get_replace(mut r: Reader<'_>) -> Replace {
    let (user, token, new_token) = (UserId::new(r.u16()), r.token(), r.token());
    let (qty, price, tif) = (Qty::new(r.u32()), r.u32(), r.u32());
    let (display, min_qty) = (r.u8(), r.u32());
    let iso = r.0.first().copied().unwrap_or(b'N');
    Replace { user, token, new_token, qty, price, tif, display, iso, min_qty }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Command> {
        let token = Token::from_text("tok-1").unwrap();
        let stock = StockCode::from_text("CEA21").unwrap();
        let mut ioc = NewOrder::limit(UserId::new(3), token, AccountId::new(7), Side::Sell, 5, stock, 7_463);
        (ioc.tif, ioc.iso) = (0, b'Y');
        let block = NewBlock {
            user: UserId::new(2),
            token,
            account: AccountId::new(1),
            counterparty: Some(AccountId::new(2)),
            side: Side::Sell,
            qty: Qty::new(150_000),
            stock,
            price: 800_000,
            deal_id: *b"DEAL0001",
        };
        vec![
            Command::NewOrder(NewOrder::limit(UserId::new(1), token, AccountId::new(2), Side::Buy, 100, stock, 7_463)),
            Command::NewOrder(ioc),
            Command::Cancel(Cancel { user: UserId::new(1), token, qty: Qty::new(4) }),
            Command::Replace(Replace {
                user: UserId::new(1),
                token,
                new_token: Token::from_text("tok-2").unwrap(),
                qty: Qty::new(9),
                price: 746_400,
                tif: 99_999,
                display: b'Y',
                iso: b'Y',
                min_qty: 0,
            }),
            Command::NewBlock(block),
            Command::Pick(Pick {
                user: UserId::new(4),
                token,
                account: AccountId::new(5),
                side: Side::Buy,
                qty: Qty::new(12),
                stock,
                target: OrderId::new(77),
            }),
            Command::Clock,
            Command::Roll,
            Command::Halt(InstrumentId::new(6)),
            Command::Resume(InstrumentId::new(6)),
            Command::CancelAccount(AccountId::new(3_399)),
            Command::CancelUser(UserId::new(9)),
            Command::Transfer(Transfer { request: 7, account: AccountId::new(12), asset: Asset::Cash, amount: -500 }),
            Command::Transfer(Transfer {
                request: 8,
                account: AccountId::new(3),
                asset: Asset::Holding(InstrumentId::new(6)),
                amount: 1_000_000,
            }),
            Command::Reject(GatewayReject {
                user: UserId::new(9),
                token,
                reason: RejectReason::Throttled,
                names_new_token: true,
            }),
        ]
        .into_iter()
        .chain(auction_samples(token, stock))
        .chain([Command::NewBlock(NewBlock { counterparty: None, ..block })])
        .chain(listing_samples(stock))
        .collect()
    }

    fn listing_samples(stock: StockCode) -> [Command; 2] {
        [
            Command::List(Listing {
                request: 9,
                stock: StockCode::from_text("CEA26").unwrap(),
                prev_close: Price::from_fen(7_463).unwrap(),
            }),
            Command::Delist(Delisting { request: u64::MAX, stock }),
        ]
    }

    fn auction_samples(token: Token, stock: StockCode) -> Vec<Command> {
        vec![
            Command::AnnounceAuction(AnnounceAuction {
                id: AuctionId::from_text("A2026-01").unwrap(),
                stock,
                seller: AccountId::new(3_399),
                seller_user: UserId::new(7),
                qty: Qty::new(200_000),
                start: Timestamp::from_nanos(1_795_400_000_000_000_000),
                end: Timestamp::from_nanos(1_795_401_800_000_000_000),
                pricing: Pricing::Uniform,
                floor: FloorRule::PreviousClose,
            }),
            Command::AnnounceAuction(AnnounceAuction {
                id: AuctionId::from_text("A2").unwrap(),
                stock,
                seller: AccountId::new(0),
                seller_user: UserId::new(0),
                qty: Qty::new(u32::MAX),
                start: Timestamp::from_nanos(0),
                end: Timestamp::from_nanos(u64::MAX),
                pricing: Pricing::PayAsBid,
                floor: FloorRule::PreviousCloseMinus10,
            }),
            Command::AuctionBid(AuctionBid {
                user: UserId::new(4),
                token,
                account: AccountId::new(5),
                qty: Qty::new(1_000),
                stock,
                price: 750_000,
                auction: AuctionId::from_text("A2026-01").unwrap(),
            }),
        ]
    }

    fn record(i: usize, command: Command) -> Record {
        Record { seq: Seq::new(i as u64 + 1), timestamp: Timestamp::from_nanos(1_000 + i as u64), command }
    }

    #[test]
    fn every_command_round_trips() {
        let mut bytes = Vec::new();
        let records: Vec<Record> = samples().into_iter().enumerate().map(|(i, c)| record(i, c)).collect();
        for r in &records {
            let len = encode(r, &mut bytes);
            assert!(len <= RECORD_LEN_MAX);
        }
        let mut rest = &bytes[..];
        for expected in &records {
            let (decoded, used) = decode(rest).unwrap().unwrap();
            assert_eq!(&decoded, expected);
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn no_token_taking_record_is_shorter_than_the_bound() {
        let takes_token = |c: &Command| {
            matches!(
                c,
                Command::NewOrder(_)
                    | Command::Replace(_)
                    | Command::NewBlock(_)
                    | Command::Pick(_)
                    | Command::AuctionBid(_)
            )
        };
        let lengths: Vec<usize> = samples()
            .into_iter()
            .enumerate()
            .filter(|(_, c)| takes_token(c))
            .map(|(i, c)| encode(&record(i, c), &mut Vec::new()))
            .collect();
        assert_eq!(lengths.len(), 7, "every kind sampled");
        assert_eq!(lengths.iter().min(), Some(&TOKEN_RECORD_LEN_MIN), "the bound is the shortest, exactly");
    }

    #[test]
    fn auction_commands_have_their_own_tags_and_refuse_bad_letters() {
        let commands = samples();
        let mut bytes = Vec::new();
        let announce = commands.iter().find(|c| matches!(c, Command::AnnounceAuction(_))).unwrap();
        encode(&record(0, announce.clone()), &mut bytes);
        assert_eq!(bytes[HEADER_LEN + 16], 14, "announcement tag");
        let len = bytes.len();
        // The pricing letter sits 2 bytes before the checksum; an unknown one is malformed.
        let mut body = bytes[HEADER_LEN..len - 4].to_vec();
        let at = body.len() - 2;
        body[at] = b'X';
        let mut bad = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        bad.extend_from_slice(&body);
        bad.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        assert_eq!(decode(&bad), Err(JournalError::Malformed("auction announcement")));
        let bid = commands.iter().find(|c| matches!(c, Command::AuctionBid(_))).unwrap();
        bytes.clear();
        encode(&record(0, bid.clone()), &mut bytes);
        assert_eq!(bytes[HEADER_LEN + 16], 15, "bid tag");
    }

    #[test]
    fn a_reject_journaled_before_it_named_its_token_is_never_a_resend() {
        let token = Token::from_bytes(*b"T1            ");
        let mut body = vec![9, 0, 7];
        body.extend_from_slice(token.bytes());
        body.push(b'V');
        let reject =
            GatewayReject { user: UserId::new(7), token, reason: RejectReason::Throttled, names_new_token: false };
        assert_eq!(decode_command(&body), Ok(Command::Reject(reject)));
        body.push(1);
        assert_eq!(decode_command(&body), Ok(Command::Reject(GatewayReject { names_new_token: true, ..reject })));
        body.push(1);
        assert_eq!(decode_command(&body), Err(JournalError::Malformed("reject")));
    }

    #[test]
    fn reference_data_has_new_tags_and_refuses_a_price_of_zero() {
        let stock = StockCode::from_text("CEA26").unwrap();
        let listing = Listing { request: 5, stock, prev_close: Price::from_fen(7_463).unwrap() };
        let mut bytes = Vec::new();
        encode(&record(0, Command::List(listing)), &mut bytes);
        let body = &bytes[HEADER_LEN + 16..bytes.len() - 4];
        assert_eq!((body[0], body.len()), (16, 21));
        let mut zero = body.to_vec();
        zero[17..].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(decode_command(&zero), Err(JournalError::Malformed("listing")));
        bytes.clear();
        encode(&record(0, Command::Delist(Delisting { request: 5, stock })), &mut bytes);
        assert_eq!(bytes[HEADER_LEN + 16], 17);
    }

    #[test]
    fn a_torn_tail_is_incomplete_not_an_error() {
        let mut bytes = Vec::new();
        encode(&record(0, samples()[0].clone()), &mut bytes);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_is_a_checksum_error() {
        let mut bytes = Vec::new();
        encode(&record(0, samples()[3].clone()), &mut bytes);
        for i in HEADER_LEN..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(matches!(decode(&bad), Err(JournalError::BadChecksum { .. })), "byte {i}");
        }
        let mut bad = bytes.clone();
        bad[0] = 0xFF;
        assert!(matches!(decode(&bad), Err(JournalError::BadLength(_))));
    }
}
