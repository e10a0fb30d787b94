//! SoupBinTCP 3.0 packets: `u16 length` (bytes after the length field),
//! type, payload. Pure functions over byte slices, check-then-parse: the
//! length is checked against [`PAYLOAD_LEN_MAX`] before anything is read or
//! allocated, so a hostile length cannot make a reader buffer megabytes.
//!
//! Client and server packet types use disjoint letters, so one [`Packet`]
//! enum covers both directions; each endpoint rejects the other side's types.

use bytes::BufMut;
use thiserror::Error;

/// Largest length field accepted (type byte plus payload). The longest
/// standard packet is a Sequenced Data carrying OUCH Replaced (1 + 80);
/// Debug text is capped at the same size.
pub const PAYLOAD_LEN_MAX: usize = 128;
/// Length of a session name (`CX` + `YYYYMMDD`).
pub const SESSION_LEN: usize = 10;
/// Length of the ASCII sequence-number fields.
pub const SEQUENCE_LEN: usize = 20;
/// Login Request payload length (without the type byte).
pub const LOGIN_REQUEST_LEN: usize = 6 + 10 + SESSION_LEN + SEQUENCE_LEN;

const _: () = assert!(80 < PAYLOAD_LEN_MAX);
const _: () = assert!(LOGIN_REQUEST_LEN < PAYLOAD_LEN_MAX);
const _: () = assert!(PAYLOAD_LEN_MAX <= u16::MAX as usize);

/// Why bytes are not a SoupBinTCP packet. Each is a protocol error: the
/// connection is closed with a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SoupError {
    /// The length field is 0 (no type byte) or above [`PAYLOAD_LEN_MAX`].
    #[error("packet length {0} out of range 1..={PAYLOAD_LEN_MAX}")]
    LengthOutOfRange(usize),
    /// The type byte is not a SoupBinTCP packet type.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A fixed-size packet has the wrong length.
    #[error("packet type {kind:?} has {actual} payload bytes, expected {expected}")]
    WrongLength {
        /// The type letter.
        kind: char,
        /// The payload length it must have.
        expected: usize,
        /// The payload length received.
        actual: usize,
    },
    /// A numeric ASCII field holds something other than digits and spaces.
    #[error("sequence number field is not a number")]
    BadNumber,
}

/// A Login Request's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRequest {
    /// Username, 6 bytes space-padded.
    pub username: [u8; 6],
    /// Password, 10 bytes space-padded.
    pub password: [u8; 10],
    /// Requested session; all spaces means today's.
    pub session: [u8; SESSION_LEN],
    /// Requested sequence number; 0 (or blank) means only new messages.
    pub sequence: u64,
}

/// One SoupBinTCP packet; payload slices borrow from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// C→S `L`.
    LoginRequest(LoginRequest),
    /// C→S `U`: one OUCH inbound message.
    Unsequenced(&'a [u8]),
    /// C→S `R`.
    ClientHeartbeat,
    /// C→S `O`.
    LogoutRequest,
    /// S→C `A`: the session and the next sequenced message's number.
    LoginAccepted {
        /// Session name.
        session: [u8; SESSION_LEN],
        /// Next sequence number.
        sequence: u64,
    },
    /// S→C `J`: `A` not authorized, `S` session not available.
    LoginRejected(u8),
    /// S→C `S`: one outbound message.
    Sequenced(&'a [u8]),
    /// S→C `H`.
    ServerHeartbeat,
    /// S→C `Z`.
    EndOfSession,
    /// Either direction `+`: free text.
    Debug(&'a [u8]),
}

impl Packet<'_> {
    /// True for the packet types a client may send.
    pub fn is_from_client(&self) -> bool {
        matches!(
            self,
            Packet::LoginRequest(_)
                | Packet::Unsequenced(_)
                | Packet::ClientHeartbeat
                | Packet::LogoutRequest
                | Packet::Debug(_)
        )
    }

    /// Appends the packet, length field first, to `out` (a `Vec<u8>` or a
    /// `BytesMut`).
    pub fn encode(&self, out: &mut impl BufMut) {
        match *self {
            Packet::LoginRequest(l) => {
                begin(out, b'L', LOGIN_REQUEST_LEN);
                out.put_slice(&l.username);
                out.put_slice(&l.password);
                out.put_slice(&l.session);
                out.put_slice(&numeric(l.sequence));
            }
            Packet::LoginAccepted { session, sequence } => {
                begin(out, b'A', SESSION_LEN + SEQUENCE_LEN);
                out.put_slice(&session);
                out.put_slice(&numeric(sequence));
            }
            Packet::LoginRejected(reason) => frame(out, b'J', &[reason]),
            Packet::Unsequenced(msg) => frame(out, b'U', msg),
            Packet::Sequenced(msg) => frame(out, b'S', msg),
            Packet::Debug(text) => frame(out, b'+', text),
            Packet::ClientHeartbeat => frame(out, b'R', &[]),
            Packet::LogoutRequest => frame(out, b'O', &[]),
            Packet::ServerHeartbeat => frame(out, b'H', &[]),
            Packet::EndOfSession => frame(out, b'Z', &[]),
        }
    }

    /// The packet's type letter.
    pub fn kind(&self) -> u8 {
        match self {
            Packet::LoginRequest(_) => b'L',
            Packet::Unsequenced(_) => b'U',
            Packet::ClientHeartbeat => b'R',
            Packet::LogoutRequest => b'O',
            Packet::LoginAccepted { .. } => b'A',
            Packet::LoginRejected(_) => b'J',
            Packet::Sequenced(_) => b'S',
            Packet::ServerHeartbeat => b'H',
            Packet::EndOfSession => b'Z',
            Packet::Debug(_) => b'+',
        }
    }
}

/// Appends one packet of type `kind` with `payload` to `out`.
///
/// # Panics
/// If the payload is longer than [`PAYLOAD_LEN_MAX`] allows: a caller bug,
/// every message we send is shorter.
pub fn frame(out: &mut impl BufMut, kind: u8, payload: &[u8]) {
    assert!(payload.len() < PAYLOAD_LEN_MAX, "SoupBinTCP payload of {} bytes", payload.len());
    begin(out, kind, payload.len());
    out.put_slice(payload);
}

/// The length field and type byte of a packet with `payload_len` payload bytes.
fn begin(out: &mut impl BufMut, kind: u8, payload_len: usize) {
    out.put_u16((payload_len + 1) as u16);
    out.put_u8(kind);
}

/// A number as a 20-byte ASCII field, right-justified and space-padded.
pub fn numeric(n: u64) -> [u8; SEQUENCE_LEN] {
    let mut field = [b' '; SEQUENCE_LEN];
    let digits = n.to_string();
    field[SEQUENCE_LEN - digits.len()..].copy_from_slice(digits.as_bytes());
    field
}

/// Parses a numeric ASCII field leniently: spaces on either side are
/// stripped (real clients left-justify), blank is 0.
///
/// # Errors
/// [`SoupError::BadNumber`] for anything but digits inside the spaces, or a
/// value above `u64::MAX`.
pub fn parse_numeric(field: &[u8]) -> Result<u64, SoupError> {
    let text = field.trim_ascii();
    if text.is_empty() {
        return Ok(0);
    }
    if !text.iter().all(u8::is_ascii_digit) {
        return Err(SoupError::BadNumber);
    }
    std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()).ok_or(SoupError::BadNumber)
}

/// Splits the first complete packet off `buf`: `Ok(None)` until a whole
/// packet has arrived, else the packet and the bytes it used.
///
/// # Errors
/// A [`SoupError`]: the stream cannot be resynchronised and must be closed.
pub fn next_packet(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, SoupError> {
    let Some(&[hi, lo]) = buf.first_chunk::<2>() else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len == 0 || len > PAYLOAD_LEN_MAX {
        return Err(SoupError::LengthOutOfRange(len));
    }
    let Some(body) = buf.get(2..2 + len) else {
        return Ok(None);
    };
    decode(body).map(|packet| Some((packet, 2 + len)))
}

/// Decodes one packet body (type byte and payload, without the length).
///
/// # Errors
/// Unknown type, wrong length for a fixed-size type, or a bad number.
pub fn decode(body: &[u8]) -> Result<Packet<'_>, SoupError> {
    let Some((&kind, payload)) = body.split_first() else {
        return Err(SoupError::LengthOutOfRange(0));
    };
    let fixed = |expected: usize| {
        if payload.len() == expected {
            Ok(())
        } else {
            Err(SoupError::WrongLength { kind: char::from(kind), expected, actual: payload.len() })
        }
    };
    Ok(match kind {
        b'L' => {
            fixed(LOGIN_REQUEST_LEN)?;
            Packet::LoginRequest(login_request(payload)?)
        }
        b'A' => {
            fixed(SESSION_LEN + SEQUENCE_LEN)?;
            let (session, sequence) = payload.split_at(SESSION_LEN);
            Packet::LoginAccepted { session: array(session), sequence: parse_numeric(sequence)? }
        }
        b'J' => {
            fixed(1)?;
            Packet::LoginRejected(payload[0])
        }
        b'U' => Packet::Unsequenced(payload),
        b'S' => Packet::Sequenced(payload),
        b'+' => Packet::Debug(payload),
        b'R' | b'O' | b'H' | b'Z' => {
            fixed(0)?;
            match kind {
                b'R' => Packet::ClientHeartbeat,
                b'O' => Packet::LogoutRequest,
                b'H' => Packet::ServerHeartbeat,
                _ => Packet::EndOfSession,
            }
        }
        other => return Err(SoupError::UnknownType(other)),
    })
}

fn login_request(payload: &[u8]) -> Result<LoginRequest, SoupError> {
    let (username, rest) = payload.split_at(6);
    let (password, rest) = rest.split_at(10);
    let (session, sequence) = rest.split_at(SESSION_LEN);
    Ok(LoginRequest {
        username: array(username),
        password: array(password),
        session: array(session),
        sequence: parse_numeric(sequence)?,
    })
}

/// Copies a slice the caller has sized into an array.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [b' '; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// A text left-justified in an `N`-byte space-padded field; `None` when too long.
pub fn alpha<const N: usize>(text: &str) -> Option<[u8; N]> {
    let src = text.as_bytes();
    let mut field = [b' '; N];
    field.get_mut(..src.len())?.copy_from_slice(src);
    Some(field)
}

/// The session name of a trading day: `CX` + `YYYYMMDD`.
pub fn session_name(yyyymmdd: u32) -> [u8; SESSION_LEN] {
    let mut name = [b' '; SESSION_LEN];
    let text = format!("CX{yyyymmdd:08}");
    name.copy_from_slice(&text.as_bytes()[..SESSION_LEN]);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Packet<'_> {
        let (packet, used) = next_packet(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        packet
    }

    #[test]
    fn login_request_bytes_by_hand() {
        let mut wire = vec![0, 47, b'L'];
        wire.extend_from_slice(b"DEMO01demo      ");
        wire.extend_from_slice(b"          ");
        wire.extend_from_slice(b"1                   "); // left-justified, as nasdaq-protocols sends it
        let Packet::LoginRequest(login) = one(&wire) else { panic!("not a login") };
        assert_eq!(&login.username, b"DEMO01");
        assert_eq!(&login.password, b"demo      ");
        assert_eq!(login.session, [b' '; 10]);
        assert_eq!(login.sequence, 1);
        let mut again = Vec::new();
        Packet::LoginRequest(login).encode(&mut again);
        assert_eq!(&again[..29], &wire[..29]);
        assert_eq!(&again[29..], b"                   1");
    }

    #[test]
    fn server_packets_by_hand() {
        let mut out = Vec::new();
        Packet::LoginAccepted { session: session_name(20_261_124), sequence: 42 }.encode(&mut out);
        let mut expected = vec![0, 31, b'A'];
        expected.extend_from_slice(b"CX20261124");
        expected.extend_from_slice(b"                  42");
        assert_eq!(out, expected);
        assert_eq!(one(&out), Packet::LoginAccepted { session: *b"CX20261124", sequence: 42 });
        for (packet, bytes) in [
            (Packet::LoginRejected(b'S'), &[0u8, 2, b'J', b'S'][..]),
            (Packet::ServerHeartbeat, &[0, 1, b'H']),
            (Packet::EndOfSession, &[0, 1, b'Z']),
            (Packet::ClientHeartbeat, &[0, 1, b'R']),
            (Packet::LogoutRequest, &[0, 1, b'O']),
            (Packet::Sequenced(b"xy"), &[0, 3, b'S', b'x', b'y']),
            (Packet::Unsequenced(b"q"), &[0, 2, b'U', b'q']),
            (Packet::Debug(b"hi"), &[0, 3, b'+', b'h', b'i']),
        ] {
            let mut out = Vec::new();
            packet.encode(&mut out);
            assert_eq!(out, bytes, "{packet:?}");
            assert_eq!(one(bytes), packet);
        }
    }

    #[test]
    fn partial_input_waits_and_bad_input_is_an_error() {
        assert_eq!(next_packet(&[]), Ok(None));
        assert_eq!(next_packet(&[0]), Ok(None));
        assert_eq!(next_packet(&[0, 2, b'U']), Ok(None));
        assert_eq!(next_packet(&[0, 0]), Err(SoupError::LengthOutOfRange(0)));
        assert_eq!(next_packet(&[0xFF, 0xFF]), Err(SoupError::LengthOutOfRange(65_535)));
        assert_eq!(next_packet(&[0, 1, b'Q']), Err(SoupError::UnknownType(b'Q')));
        assert!(matches!(next_packet(&[0, 2, b'R', 0]), Err(SoupError::WrongLength { .. })));
        let mut login = vec![0, 47, b'L'];
        login.extend_from_slice(&[b'x'; 26]);
        login.extend_from_slice(b"       12a          ");
        assert_eq!(next_packet(&login), Err(SoupError::BadNumber));
    }

    #[test]
    fn numbers_parse_leniently() {
        assert_eq!(parse_numeric(b"                    "), Ok(0));
        assert_eq!(parse_numeric(b"  17  "), Ok(17));
        assert_eq!(parse_numeric(b"99999999999999999999"), Err(SoupError::BadNumber));
        assert_eq!(parse_numeric(b"1 2"), Err(SoupError::BadNumber));
        assert_eq!(numeric(0), *b"                   0");
    }

    #[test]
    fn no_input_panics() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..100_000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (state >> 60) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (state >> (i * 4)) as u8).collect();
            let _ = next_packet(&bytes);
        }
    }
}
