//! The order-entry session as a sequence of packets through the soup
//! sans-IO state machine: the server session reads the client's bytes in
//! fuzzer-chosen pieces at fuzzer-chosen times, answers the login as the
//! gateway does, echoes each decoded OUCH message as a sequenced message,
//! and everything it writes goes through a client decoder.

use super::{byte, take};
use carbonx_gateway::ouch::Inbound;
use carbonx_soup::packet::session_name;
use carbonx_soup::session::{ClientEvent, ClientSession, Event, ServerSession, Timers};
use std::time::{Duration, Instant};

/// Runs the script in `data`: each step is an opcode byte and its operand.
pub fn gateway_session(data: &[u8]) {
    let mut data = data;
    let stream_next = 1 + u64::from(byte(&mut data));
    let mut run = Run::new(stream_next);
    while !data.is_empty() {
        match byte(&mut data) % 4 {
            0 | 1 => {
                let len = usize::from(byte(&mut data) % 64) + 1;
                let piece = take(&mut data, len);
                run.session.receive(piece, run.now);
            }
            2 => {
                run.now += Duration::from_millis(u64::from(byte(&mut data)) * 100);
                if let Some(event) = run.session.handle_timeout(run.now) {
                    run.handle(event);
                }
            }
            _ => run.session.writer.end_session(),
        }
        run.drain();
    }
}

/// One connection: the server session, the time, and what the client saw.
struct Run {
    session: ServerSession,
    now: Instant,
    stream_next: u64,
    client: ClientSession,
    logged_in: bool,
    ended: bool,
    answer: Option<ClientEvent>,
}

impl Run {
    fn new(stream_next: u64) -> Run {
        let now = Instant::now();
        Run {
            session: ServerSession::new(Timers::default(), now),
            now,
            stream_next,
            client: ClientSession::new(),
            logged_in: false,
            ended: false,
            answer: None,
        }
    }

    /// Takes every event, then passes what the server wrote to the client.
    fn drain(&mut self) {
        while let Some(event) = self.session.poll_event() {
            self.handle(event);
        }
        if let Some(bytes) = self.session.poll_transmit(self.now) {
            self.client.receive(&bytes);
        }
        while let Some(event) = self.client.poll_event().expect("the server writes valid SoupBinTCP") {
            self.saw(event);
        }
        if self.session.writer.is_idle() && matches!(self.answer, Some(ClientEvent::LoginAccepted { .. })) {
            assert_eq!(self.client.next_seq(), self.session.writer.next_seq());
        }
    }

    /// The gateway's side: answer the login, echo each message.
    fn handle(&mut self, event: Event) {
        assert!(!self.ended, "an event after the session ended: {event:?}");
        match event {
            Event::LoginRequested(login) => {
                assert!(!self.logged_in, "two logins");
                self.logged_in = true;
                if login.password[0] == b'!' {
                    self.session.writer.reject(b'A');
                } else {
                    // Replay starts where asked, never past the stream's end.
                    let next =
                        if login.sequence == 0 { self.stream_next } else { login.sequence.min(self.stream_next) };
                    self.session.writer.accept(session_name(20_261_124), next);
                }
            }
            Event::Unsequenced(message) => {
                assert!(self.logged_in, "data before the login");
                let mut reply = Vec::new();
                match Inbound::decode(&message) {
                    Ok(inbound) => inbound.encode_into(&mut reply),
                    Err(_) => reply.extend_from_slice(&message),
                }
                self.session.writer.sequenced(&reply);
            }
            Event::Logout | Event::TimedOut(_) | Event::ProtocolError(_) => {
                self.ended = true;
                assert!(self.session.reader.is_closed());
                assert_eq!(self.session.poll_event(), None);
            }
        }
    }

    /// The client's side: one answer to the login, then numbered messages.
    fn saw(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::LoginAccepted { .. } | ClientEvent::LoginRejected(_) => {
                assert!(self.answer.is_none(), "a second login answer");
                self.answer = Some(event);
            }
            ClientEvent::Sequenced(..) | ClientEvent::Heartbeat => {
                assert!(matches!(self.answer, Some(ClientEvent::LoginAccepted { .. })), "{event:?} before Accepted");
            }
            ClientEvent::EndOfSession | ClientEvent::Debug(_) => {}
        }
    }
}
