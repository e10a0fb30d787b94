//! Hand-built frames: SoupBinTCP 3.0 packets and OUCH 4.2 messages
//! written byte by byte from the tables of docs/PROTOCOL.md, not with the gateway's
//! codecs, so that tshark checks the tables and not our own code.

use crate::support::pcap::Direction;

/// A conversation as written: chunks of bytes, each one way.
pub(crate) type Segments = Vec<(Direction, Vec<u8>)>;

/// An `A` field: ASCII, left-justified, space-padded to `n`.
pub(crate) fn alpha(s: &str, n: usize) -> Vec<u8> {
    assert!(s.len() <= n, "{s:?} longer than {n}");
    format!("{s:<n$}").into_bytes()
}

/// A numeric ASCII field as we send it: right-justified, space-padded.
pub(crate) fn numeric(v: u64, n: usize) -> Vec<u8> {
    format!("{v:>n$}").into_bytes()
}

/// A SoupBinTCP packet: `u16` length (type + payload), type, payload.
pub(crate) fn soup(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ((payload.len() + 1) as u16).to_be_bytes().to_vec();
    f.push(kind);
    f.extend_from_slice(payload);
    f
}

/// Login Request `L`: username 6A, password 10A, session 10A, sequence 20A.
pub(crate) fn login_request(user: &str, password: &str, session: &str, seq: &[u8]) -> Vec<u8> {
    let p = [alpha(user, 6), alpha(password, 10), alpha(session, 10), seq.to_vec()].concat();
    assert_eq!(p.len(), 46);
    let f = soup(b'L', &p);
    assert_eq!(u16::from_be_bytes([f[0], f[1]]), 47, "length field of a Login Request");
    f
}

/// Login Accepted `A`: session 10A, sequence number 20A.
pub(crate) fn login_accepted(session: &str, next_seq: u64) -> Vec<u8> {
    let f = soup(b'A', &[alpha(session, 10), numeric(next_seq, 20)].concat());
    assert_eq!(u16::from_be_bytes([f[0], f[1]]), 31);
    f
}

/// OUCH 4.2 Enter Order `O` (49 bytes).
pub(crate) struct EnterOrder {
    /// Order token, 14A.
    pub(crate) token: &'static str,
    /// `B` or `S`.
    pub(crate) side: u8,
    /// Tonnes.
    pub(crate) shares: u32,
    /// Stock, 8A.
    pub(crate) stock: &'static str,
    /// Price, 4 implied decimals.
    pub(crate) price: u32,
    /// Time in force.
    pub(crate) tif: u32,
    /// Firm (trading account), 4A.
    pub(crate) firm: &'static str,
    /// Display.
    pub(crate) display: u8,
    /// Capacity.
    pub(crate) capacity: u8,
    /// Intermarket sweep.
    pub(crate) iso: u8,
    /// Minimum quantity.
    pub(crate) min_qty: u32,
    /// Cross type.
    pub(crate) cross: u8,
    /// Customer type.
    pub(crate) customer: u8,
}

impl EnterOrder {
    /// The 49 bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let m = [
            vec![b'O'],
            alpha(self.token, 14),
            vec![self.side],
            self.shares.to_be_bytes().to_vec(),
            alpha(self.stock, 8),
            self.price.to_be_bytes().to_vec(),
            self.tif.to_be_bytes().to_vec(),
            alpha(self.firm, 4),
            vec![self.display, self.capacity, self.iso],
            self.min_qty.to_be_bytes().to_vec(),
            vec![self.cross, self.customer],
        ]
        .concat();
        assert_eq!(m.len(), 49);
        m
    }
}

/// The demo order of the Python client: buy 10 t CEA at 74.63, day.
pub(crate) fn demo_order(token: &'static str) -> EnterOrder {
    EnterOrder {
        token,
        side: b'B',
        shares: 10,
        stock: "CEA",
        price: 746_300,
        tif: 99_999,
        firm: "0001",
        display: b'Y',
        capacity: b'A',
        iso: b'N',
        min_qty: 0,
        cross: b'N',
        customer: b'R',
    }
}

/// Timestamp of 09:30:00.000000123 in nanoseconds since midnight.
pub(crate) const TS: u64 = (9 * 3_600 + 30 * 60) * 1_000_000_000 + 123;

/// OUCH 4.2 Accepted's first 65 bytes (type byte given): everything up to
/// and including the order state.
pub(crate) fn accepted_head(kind: u8, o: &EnterOrder, order_ref: u64) -> Vec<u8> {
    let m = [
        vec![kind],
        TS.to_be_bytes().to_vec(),
        alpha(o.token, 14),
        vec![o.side],
        o.shares.to_be_bytes().to_vec(),
        alpha(o.stock, 8),
        o.price.to_be_bytes().to_vec(),
        o.tif.to_be_bytes().to_vec(),
        alpha(o.firm, 4),
        vec![o.display],
        order_ref.to_be_bytes().to_vec(),
        vec![o.capacity, o.iso],
        o.min_qty.to_be_bytes().to_vec(),
        vec![o.cross, b'L'],
    ]
    .concat();
    assert_eq!(m.len(), 65);
    m
}

/// Accepted `A`, 66 bytes (BBO weight indicator blank).
pub(crate) fn accepted(o: &EnterOrder, order_ref: u64) -> Vec<u8> {
    let mut m = accepted_head(b'A', o, order_ref);
    m.push(b' ');
    assert_eq!(m.len(), 66);
    m
}

/// Replaced `U`, 80 bytes: Accepted's first 65, previous token, BBO weight.
pub(crate) fn replaced(o: &EnterOrder, order_ref: u64, previous: &str) -> Vec<u8> {
    let mut m = accepted_head(b'U', o, order_ref);
    m.extend_from_slice(&alpha(previous, 14));
    m.push(b' ');
    assert_eq!(m.len(), 80);
    m
}

/// Executed `E`, 40 bytes.
pub(crate) fn executed(token: &str, shares: u32, price: u32, liquidity: u8, match_no: u64) -> Vec<u8> {
    let m = [
        vec![b'E'],
        TS.to_be_bytes().to_vec(),
        alpha(token, 14),
        shares.to_be_bytes().to_vec(),
        price.to_be_bytes().to_vec(),
        vec![liquidity],
        match_no.to_be_bytes().to_vec(),
    ]
    .concat();
    assert_eq!(m.len(), 40);
    m
}

/// Canceled `C`, 28 bytes.
pub(crate) fn canceled(token: &str, decrement: u32, reason: u8) -> Vec<u8> {
    let m = [vec![b'C'], TS.to_be_bytes().to_vec(), alpha(token, 14), decrement.to_be_bytes().to_vec(), vec![reason]]
        .concat();
    assert_eq!(m.len(), 28);
    m
}

/// Rejected `J`, 24 bytes.
pub(crate) fn rejected(token: &str, reason: u8) -> Vec<u8> {
    let m = [vec![b'J'], TS.to_be_bytes().to_vec(), alpha(token, 14), vec![reason]].concat();
    assert_eq!(m.len(), 24);
    m
}

/// System Event `S`, 10 bytes.
pub(crate) fn system_event(code: u8) -> Vec<u8> {
    let m = [vec![b'S'], TS.to_be_bytes().to_vec(), vec![code]].concat();
    assert_eq!(m.len(), 10);
    m
}

/// Cancel Reject `I`, 23 bytes.
pub(crate) fn cancel_reject(token: &str) -> Vec<u8> {
    let m = [vec![b'I'], TS.to_be_bytes().to_vec(), alpha(token, 14)].concat();
    assert_eq!(m.len(), 23);
    m
}

/// Replace Order `U`, 47 bytes.
pub(crate) fn replace_order(
    existing: &str,
    replacement: &str,
    shares: u32,
    price: u32,
    tif: u32,
    display: u8,
    min_qty: u32,
) -> Vec<u8> {
    let m = [
        vec![b'U'],
        alpha(existing, 14),
        alpha(replacement, 14),
        shares.to_be_bytes().to_vec(),
        price.to_be_bytes().to_vec(),
        tif.to_be_bytes().to_vec(),
        vec![display, b'N'],
        min_qty.to_be_bytes().to_vec(),
    ]
    .concat();
    assert_eq!(m.len(), 47);
    m
}

/// Cancel Order `X`, 19 bytes.
pub(crate) fn cancel_order(token: &str, shares: u32) -> Vec<u8> {
    let m = [vec![b'X'], alpha(token, 14), shares.to_be_bytes().to_vec()].concat();
    assert_eq!(m.len(), 19);
    m
}

/// A whole session: login, heartbeats, every inbound and outbound message.
pub(crate) fn full_session() -> Segments {
    use Direction::{ToClient, ToServer};
    let buy = demo_order("B1");
    let sell = EnterOrder { token: "S1", side: b'S', shares: 25, price: 746_200, firm: "0002", ..demo_order("S1") };
    let rep = EnterOrder { token: "B2", shares: 6, price: 746_400, ..demo_order("B2") };
    vec![
        (ToServer, login_request("DEMO01", "demo", "", &numeric(1, 20))),
        (ToClient, login_accepted("CX20261124", 1)),
        (ToClient, soup(b'S', &system_event(b'S'))),
        (ToServer, soup(b'U', &buy.bytes())),
        (ToClient, soup(b'S', &accepted(&buy, 7))),
        (ToServer, soup(b'R', &[])),
        (ToClient, soup(b'H', &[])),
        // Several packets in one segment, as a server's one write.
        (
            ToServer,
            [soup(b'U', &sell.bytes()), soup(b'U', &replace_order("B1", "B2", 6, 746_400, 99_999, b'Y', 0))].concat(),
        ),
        (
            ToClient,
            [
                soup(b'S', &accepted(&sell, 8)),
                soup(b'S', &executed("S1", 4, 746_300, b'R', 3)),
                soup(b'S', &replaced(&rep, 9, "B1")),
                soup(b'S', &rejected("S9", b'X')),
            ]
            .concat(),
        ),
        (ToServer, soup(b'U', &cancel_order("B2", 0))),
        (ToClient, [soup(b'S', &canceled("B2", 6, b'U')), soup(b'S', &cancel_reject("B7"))].concat()),
        (ToServer, soup(b'O', &[])),
        (ToClient, soup(b'Z', &[])),
    ]
}
