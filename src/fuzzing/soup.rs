//! SoupBinTCP framing (both directions' packets, the client-side decoder)
//! and the login read that the gateway and the feed share.

use carbonx_soup::packet::{self, PAYLOAD_LEN_MAX, Packet};
use carbonx_soup::server::{self, LoginError};
use carbonx_soup::session::{ClientEvent, ClientSession, Event, SessionError, SessionReader, Timers};
use std::time::Instant;

/// Splits `data` into SoupBinTCP packets as a server and a client read
/// them. Every packet that decodes encodes back to itself; a client
/// decoder fed byte by byte sees what one fed everything at once sees.
pub fn soup_packet(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((packet, used))) = packet::next_packet(rest) {
        assert!((3..=2 + PAYLOAD_LEN_MAX).contains(&used), "{used} bytes used");
        encodes_back(&packet, &rest[..used]);
        rest = &rest[used..];
    }
    let whole = client_events(&[data]);
    let pieces: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(client_events(&pieces), whole, "a client decoder depends on how the bytes arrive");
}

/// `packet`, decoded from `wire`, encodes to bytes that decode to it again:
/// the very same bytes except for the leniently parsed number fields.
fn encodes_back(packet: &Packet<'_>, wire: &[u8]) {
    let mut again = Vec::new();
    packet.encode(&mut again);
    assert_eq!(again.len(), wire.len());
    assert_eq!(packet::decode(&again[2..]), Ok(*packet));
    if !matches!(packet, Packet::LoginRequest(_) | Packet::LoginAccepted { .. }) {
        assert_eq!(again, wire, "{packet:?}");
    }
}

/// What a [`ClientSession`] makes of `pieces` arriving one after another:
/// its events (up to the first error) and the error.
fn client_events(pieces: &[&[u8]]) -> (Vec<ClientEvent>, Option<SessionError>) {
    let mut client = ClientSession::new();
    let mut events = Vec::new();
    for piece in pieces {
        client.receive(piece);
        loop {
            match client.poll_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(err) => return (events, Some(err)),
            }
        }
    }
    (events, None)
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime");
}

/// Reads a login from `data` as the gateway and the feed do, through
/// [`server::read_login`] over an in-memory socket; the outcome matches
/// the sans-IO reader's first event for the same bytes, and an accepted
/// login encodes back to the bytes it came from.
pub fn soup_login(data: &[u8]) {
    let start = Instant::now();
    let mut reader = SessionReader::new(Timers::default(), start);
    let mut socket = data;
    let outcome = RUNTIME.with(|rt| rt.block_on(server::read_login(&mut socket, &mut reader)));
    let mut direct = SessionReader::new(Timers::default(), start);
    direct.receive(data, start);
    match (outcome, direct.poll_event()) {
        (Ok(login), Some(Event::LoginRequested(expected))) => {
            assert_eq!(login, expected);
            assert!(reader.is_logged_in());
            let mut wire = Vec::new();
            Packet::LoginRequest(login).encode(&mut wire);
            assert_eq!(wire[..29], data[..29], "username and password are kept byte for byte");
        }
        (Err(LoginError::Protocol(err)), Some(Event::ProtocolError(expected))) => {
            assert_eq!(err, expected);
            assert!(reader.is_closed());
        }
        (Err(LoginError::Closed), None) => assert!(!reader.is_logged_in()),
        // The machine stalled past the login timeout: nothing to compare.
        (Err(LoginError::TimedOut), _) => {}
        (outcome, event) => panic!("read_login gave {outcome:?}, the reader {event:?}"),
    }
}
