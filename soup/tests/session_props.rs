//! Property tests of the sans-IO session state machine, driven directly:
//! no sockets, no tokio, a simulated clock.

use bytes::Bytes;
use carbonx_soup::daylog::DayLog;
use carbonx_soup::packet::{LoginRequest, Packet};
use carbonx_soup::session::{ClientEvent, ClientSession, Event, ServerSession, SessionReader, Timeout, Timers};
use proptest::prelude::*;
use std::time::{Duration, Instant};

const SESSION: [u8; 10] = *b"CX20261124";

/// What a client may send after its login.
#[derive(Clone, Debug)]
enum Sent {
    Data(Vec<u8>),
    Heartbeat,
    Debug(Vec<u8>),
}

fn login(sequence: u64) -> LoginRequest {
    LoginRequest { username: *b"DEMO01", password: *b"demo      ", session: [b' '; 10], sequence }
}

fn sent() -> impl Strategy<Value = Sent> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..100).prop_map(Sent::Data),
        1 => Just(Sent::Heartbeat),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Sent::Debug),
    ]
}

/// The wire bytes of a login, `packets` and optionally a logout, and the
/// events the server must report for them.
fn client_stream(packets: &[Sent], logout: bool) -> (Vec<u8>, Vec<Event>) {
    let mut wire = Vec::new();
    Packet::LoginRequest(login(1)).encode(&mut wire);
    let mut events = vec![Event::LoginRequested(login(1))];
    for packet in packets {
        match packet {
            Sent::Data(bytes) => {
                Packet::Unsequenced(bytes).encode(&mut wire);
                events.push(Event::Unsequenced(Bytes::copy_from_slice(bytes)));
            }
            Sent::Heartbeat => Packet::ClientHeartbeat.encode(&mut wire),
            Sent::Debug(text) => Packet::Debug(text).encode(&mut wire),
        }
    }
    if logout {
        Packet::LogoutRequest.encode(&mut wire);
        events.push(Event::Logout);
    }
    (wire, events)
}

/// Feeds `wire` cut at `cuts` (offsets, any order) and collects the events.
fn server_events(wire: &[u8], cuts: &[usize], now: Instant) -> (Vec<Event>, SessionReader) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.push(0);
    cuts.push(wire.len());
    cuts.sort_unstable();
    let mut reader = SessionReader::new(Timers::default(), now);
    let mut events = Vec::new();
    for piece in cuts.windows(2) {
        reader.receive(&wire[piece[0]..piece[1]], now);
        while let Some(event) = reader.poll_event() {
            events.push(event);
        }
    }
    (events, reader)
}

proptest! {
    #[test]
    fn any_split_of_a_client_stream_gives_the_same_events(
        packets in proptest::collection::vec(sent(), 0..30),
        logout in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let (wire, expected) = client_stream(&packets, logout);
        let now = Instant::now();
        let (whole, _) = server_events(&wire, &[], now);
        prop_assert_eq!(&whole, &expected);
        let (split, reader) = server_events(&wire, &cuts, now);
        prop_assert_eq!(&split, &expected);
        prop_assert_eq!(reader.is_closed(), logout);
    }

    #[test]
    fn garbage_never_panics_and_ends_in_an_error_or_a_close(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        logged_in in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let now = Instant::now();
        let mut wire = Vec::new();
        if logged_in {
            Packet::LoginRequest(login(0)).encode(&mut wire);
        }
        wire.extend_from_slice(&garbage);
        let (events, mut reader) = server_events(&wire, &cuts, now);
        for (n, event) in events.iter().enumerate() {
            match event {
                Event::LoginRequested(_) => prop_assert_eq!(n, 0),
                Event::Unsequenced(_) => prop_assert!(reader.is_logged_in() || reader.is_closed()),
                Event::Logout | Event::ProtocolError(_) => prop_assert_eq!(n, events.len() - 1),
                Event::TimedOut(_) => prop_assert!(false, "a timeout without time passing"),
            }
        }
        // Whatever is left incomplete, the timers close the session.
        if !reader.is_closed() {
            let event = reader.handle_timeout(now + Duration::from_secs(3_600));
            prop_assert!(matches!(event, Some(Event::TimedOut(_))), "{:?}", event);
        }
        prop_assert!(reader.is_closed());
        prop_assert_eq!(reader.poll_event(), None);
    }

    #[test]
    fn garbage_from_a_server_never_panics_the_client(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut client = ClientSession::new();
        client.receive(&garbage);
        for _ in 0..garbage.len() + 1 {
            match client.poll_event() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn heartbeats_after_silence_and_the_idle_timeout_on_a_simulated_clock(
        gaps_ms in proptest::collection::vec(0u64..20_000, 1..20),
    ) {
        let timers = Timers::default();
        let start = Instant::now();
        let mut session = ServerSession::new(timers, start);
        let mut wire = Vec::new();
        Packet::LoginRequest(login(0)).encode(&mut wire);
        session.receive(&wire, start);
        prop_assert_eq!(session.poll_event(), Some(Event::LoginRequested(login(0))));
        session.writer.accept(SESSION, 1);
        prop_assert!(session.poll_transmit(start).is_some());
        let (mut now, mut last_received, mut last_sent) = (start, start, start);
        let mut timed_out = None;
        'gaps: for gap in &gaps_ms {
            let arrival = now + Duration::from_millis(*gap);
            // Everything due before the client's next heartbeat arrives.
            while let Some(due) = session.poll_timeout().filter(|&d| d <= arrival) {
                now = due;
                if let Some(event) = session.handle_timeout(now) {
                    prop_assert_eq!(event, Event::TimedOut(Timeout::Idle));
                    prop_assert_eq!(now, last_received + timers.idle);
                    timed_out = Some(now);
                    break 'gaps;
                }
                let sent = session.poll_transmit(now).expect("a heartbeat is due");
                prop_assert_eq!(&sent[..], &[0, 1, b'H']);
                prop_assert_eq!(now, last_sent + timers.heartbeat);
                last_sent = now;
            }
            now = arrival;
            session.receive(&[0, 1, b'R'], now);
            prop_assert_eq!(session.poll_event(), None);
            last_received = now;
        }
        let long_gap = gaps_ms.iter().any(|&g| Duration::from_millis(g) >= timers.idle);
        prop_assert_eq!(timed_out.is_some(), long_gap);
    }

    #[test]
    fn replay_from_n_yields_exactly_messages_n_on_in_order(
        sizes in proptest::collection::vec(0usize..90, 0..700),
        requested in 0u64..720,
        chunk in 1usize..3_000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DayLog::create(&dir.path().join("u.log"), carbonx_soup::files::FileModes::default()).unwrap();
        let messages: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(n, &len)| (0..len).map(|i| (n + i) as u8).collect()).collect();
        for batch in messages.chunks(37) {
            let packets: Vec<Bytes> = batch
                .iter()
                .map(|m| {
                    let mut packet = Vec::new();
                    Packet::Sequenced(m).encode(&mut packet);
                    Bytes::from(packet)
                })
                .collect();
            log.append_shared(&packets).unwrap();
        }
        let start = Instant::now();
        let mut session = ServerSession::new(Timers::default(), start);
        let mut cursor = if requested == 0 { log.end() } else { log.seek(requested).unwrap() };
        session.writer.accept(SESSION, cursor.seq);
        let mut client = ClientSession::new();
        let mut received = Vec::new();
        loop {
            session.writer.replay(&log, &mut cursor, chunk).unwrap();
            let Some(bytes) = session.poll_transmit(start) else { break };
            client.receive(&bytes);
            while let Some(event) = client.poll_event().unwrap() {
                received.push(event);
            }
        }
        let total = messages.len() as u64;
        let first = if requested == 0 { total + 1 } else { requested.clamp(1, total + 1) };
        prop_assert_eq!(&received[0], &ClientEvent::LoginAccepted { session: SESSION, sequence: first });
        let expected: Vec<ClientEvent> = (first..=total)
            .map(|seq| ClientEvent::Sequenced(seq, Bytes::copy_from_slice(&messages[seq as usize - 1])))
            .collect();
        prop_assert_eq!(&received[1..], &expected[..]);
        prop_assert_eq!(session.writer.next_seq(), total + 1);
    }
}

#[test]
fn no_login_within_the_timeout_closes() {
    let start = Instant::now();
    let mut session = ServerSession::new(Timers::default(), start);
    assert_eq!(session.poll_timeout(), Some(start + Duration::from_secs(5)));
    assert_eq!(session.handle_timeout(start + Duration::from_millis(4_999)), None);
    session.receive(&[0, 1], start + Duration::from_secs(1)); // half a packet does not count
    assert_eq!(session.poll_event(), None);
    assert_eq!(session.handle_timeout(start + Duration::from_secs(5)), Some(Event::TimedOut(Timeout::Login)));
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn anything_but_a_login_first_and_a_second_login_are_errors() {
    use carbonx_soup::session::SessionError;
    let now = Instant::now();
    let mut first = SessionReader::new(Timers::default(), now);
    first.receive(&[0, 1, b'R'], now);
    assert_eq!(first.poll_event(), Some(Event::ProtocolError(SessionError::LoginFirst)));
    let mut twice = SessionReader::new(Timers::default(), now);
    let mut wire = Vec::new();
    Packet::LoginRequest(login(0)).encode(&mut wire);
    Packet::LoginRequest(login(0)).encode(&mut wire);
    twice.receive(&wire, now);
    assert_eq!(twice.poll_event(), Some(Event::LoginRequested(login(0))));
    assert_eq!(twice.poll_event(), Some(Event::ProtocolError(SessionError::SecondLogin)));
    let mut server_type = SessionReader::new(Timers::default(), now);
    let mut wire = Vec::new();
    Packet::LoginRequest(login(0)).encode(&mut wire);
    Packet::EndOfSession.encode(&mut wire);
    server_type.receive(&wire, now);
    server_type.poll_event();
    assert_eq!(server_type.poll_event(), Some(Event::ProtocolError(SessionError::WrongDirection('Z'))));
}

#[test]
fn reject_and_end_of_session_end_the_writer() {
    let now = Instant::now();
    let mut session = ServerSession::new(Timers::default(), now);
    session.writer.reject(b'A');
    session.writer.sequenced(b"ignored");
    assert_eq!(&session.poll_transmit(now).unwrap()[..], &[0, 2, b'J', b'A']);
    assert!(session.writer.is_ended());
    assert_eq!(session.writer.poll_timeout(), None);
    let mut session = ServerSession::new(Timers::default(), now);
    session.writer.accept(SESSION, 7);
    session.writer.sequenced(b"x");
    session.writer.end_session();
    let mut client = ClientSession::new();
    client.receive(&session.poll_transmit(now).unwrap());
    assert_eq!(client.poll_event(), Ok(Some(ClientEvent::LoginAccepted { session: SESSION, sequence: 7 })));
    assert_eq!(client.poll_event(), Ok(Some(ClientEvent::Sequenced(7, Bytes::from_static(b"x")))));
    assert_eq!(client.poll_event(), Ok(Some(ClientEvent::EndOfSession)));
    assert_eq!(client.poll_event(), Ok(None));
}

/// Found by the `soup_packet` fuzz target: a server that announces the
/// next number `u64::MAX` and then sends messages made the client's
/// numbering overflow (a panic in debug builds, a wrap to 0 in release).
/// The client numbers up to `u64::MAX - 1`; one more is an error.
#[test]
fn sequence_numbers_past_u64_max_are_an_error_not_an_overflow() {
    use carbonx_soup::session::SessionError;
    let mut wire = Vec::new();
    Packet::LoginAccepted { session: *b"CX20261124", sequence: u64::MAX - 1 }.encode(&mut wire);
    Packet::Sequenced(b"last").encode(&mut wire);
    Packet::Sequenced(b"one too many").encode(&mut wire);
    let mut client = ClientSession::new();
    client.receive(&wire);
    assert!(matches!(client.poll_event(), Ok(Some(ClientEvent::LoginAccepted { .. }))));
    assert_eq!(client.poll_event(), Ok(Some(ClientEvent::Sequenced(u64::MAX - 1, Bytes::from_static(b"last")))));
    assert_eq!(client.poll_event(), Err(SessionError::SequenceOverflow));
}
