//! The SoupBinTCP session as a sans-IO state machine, like the engine: no
//! tokio, no clock, no sockets. The caller feeds the bytes it read and the
//! time it read them at, and takes back the bytes to write and what
//! happened ([`Event`]). Timers are deadlines the caller sleeps until
//! ([`ServerSession::poll_timeout`]) and then reports
//! ([`ServerSession::handle_timeout`]).
//!
//! The server side is two halves that can live in two tasks: the
//! [`SessionReader`] (login first within the login timeout, then client
//! packets, the idle timeout) and the [`SessionWriter`] (Login Accepted or
//! Rejected, sequenced messages with their numbers, replay from a day log,
//! heartbeats after silence, End of Session). [`ServerSession`] holds both
//! for a caller that runs a connection in one task.
//!
//! The client side, [`ClientSession`], decodes what a server sends and
//! numbers its sequenced messages from the Login Accepted's number.
//!
//! ```
//! use carbonx_soup::session::{Event, ServerSession, Timers};
//! use carbonx_soup::packet::{LoginRequest, Packet};
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let mut session = ServerSession::new(Timers::default(), start);
//! let login = LoginRequest { username: *b"DEMO01", password: *b"demo      ", session: [b' '; 10], sequence: 1 };
//! let mut wire = Vec::new();
//! Packet::LoginRequest(login).encode(&mut wire);
//! session.receive(&wire, start);
//! assert_eq!(session.poll_event(), Some(Event::LoginRequested(login)));
//! session.writer.accept(*b"CX20261124", 1);
//! assert_eq!(session.poll_transmit(start).unwrap().len(), 33);
//! // One second of silence: a heartbeat.
//! let later = start + Duration::from_secs(1);
//! assert_eq!(session.poll_timeout(), Some(later));
//! assert_eq!(session.handle_timeout(later), None);
//! assert_eq!(&session.poll_transmit(later).unwrap()[..], &[0, 1, b'H']);
//! ```

use crate::daylog::{Cursor, DayLog};
use crate::packet::{self, LoginRequest, Packet, SESSION_LEN, SoupError};
use bytes::{Buf, Bytes, BytesMut};
use std::time::{Duration, Instant};
use thiserror::Error;

/// A login must arrive within this long of the connection (PROTOCOL §2.2).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Each side sends a heartbeat after this much silence.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// This long with nothing received ends the connection.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

const _: () = assert!(HEARTBEAT.as_millis() < IDLE_TIMEOUT.as_millis());

/// Offset of a packet's payload: length field and type byte.
const HEADER_LEN: usize = 3;

/// A session's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Deadline for the Login Request, from the connection.
    pub login: Duration,
    /// Silence after which the server sends a heartbeat.
    pub heartbeat: Duration,
    /// Nothing received for this long ends the session.
    pub idle: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { login: LOGIN_TIMEOUT, heartbeat: HEARTBEAT, idle: IDLE_TIMEOUT }
    }
}

/// Which timer ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// No Login Request within the login timeout.
    Login,
    /// Nothing received within the idle timeout.
    Idle,
}

/// Why a session ends with a protocol error (logged, never sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SessionError {
    /// The bytes are not SoupBinTCP; the stream cannot be resynchronised.
    #[error("protocol error: {0}")]
    Framing(#[from] SoupError),
    /// The first packet was something else than a Login Request.
    #[error("the first packet was not a Login Request")]
    LoginFirst,
    /// A Login Request after the login.
    #[error("a second login on one connection")]
    SecondLogin,
    /// A packet type only the other side sends.
    #[error("packet type {0:?} from the wrong side")]
    WrongDirection(char),
    /// A sequenced message numbered `u64::MAX`, after which no number is
    /// left (a server that announced a next number at the end of the range).
    #[error("sequence numbers ran past u64::MAX")]
    SequenceOverflow,
}

/// What the client did, as the server's [`SessionReader`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The Login Request (always the first event). The caller answers with
    /// [`SessionWriter::accept`] or [`SessionWriter::reject`].
    LoginRequested(LoginRequest),
    /// One Unsequenced Data payload (an OUCH inbound message on order entry).
    Unsequenced(Bytes),
    /// Logout Request: the session is over.
    Logout,
    /// A timer ran out: the session is over.
    TimedOut(Timeout),
    /// The client broke the protocol: the session is over.
    ProtocolError(SessionError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the Login Request.
    Login,
    /// Logged in.
    Open,
    /// Logout, timeout or protocol error: nothing more is read.
    Closed,
}

/// What one packet means in the reader's phase.
enum Step {
    Login(LoginRequest),
    Data,
    Ignore,
    Logout,
    Fail(SessionError),
}

/// The receiving half of a server session.
#[derive(Debug)]
pub struct SessionReader {
    input: BytesMut,
    phase: Phase,
    login_deadline: Instant,
    idle: Duration,
    last_received: Instant,
}

impl SessionReader {
    /// A reader for a connection accepted at `now`.
    pub fn new(timers: Timers, now: Instant) -> SessionReader {
        SessionReader {
            input: BytesMut::with_capacity(16 * 1024),
            phase: Phase::Login,
            login_deadline: now + timers.login,
            idle: timers.idle,
            last_received: now,
        }
    }

    /// Bytes read from the socket at `now`.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        self.input.extend_from_slice(bytes);
        self.received(now);
    }

    /// The input buffer, with at least `spare` bytes of room, for reading the
    /// socket straight into it (`read_buf`); then call [`SessionReader::received`].
    pub fn read_buffer(&mut self, spare: usize) -> &mut BytesMut {
        self.input.reserve(spare);
        &mut self.input
    }

    /// Bytes arrived (in [`SessionReader::read_buffer`]) at `now`.
    pub fn received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// True after Logout, a timeout or a protocol error.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True once the Login Request has been read.
    pub fn is_logged_in(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The next event from the bytes received so far; `None` until a whole
    /// packet has arrived, and always after the session closed. Heartbeats
    /// and Debug packets are consumed silently.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if self.phase == Phase::Closed {
                return None;
            }
            let (step, used) = match packet::next_packet(&self.input) {
                Ok(Some((packet, used))) => (self.step(&packet), used),
                Ok(None) => return None,
                Err(err) => return Some(self.close(Event::ProtocolError(err.into()))),
            };
            match step {
                Step::Ignore => self.input.advance(used),
                Step::Data => {
                    let frame = self.input.split_to(used).freeze();
                    return Some(Event::Unsequenced(frame.slice(HEADER_LEN..)));
                }
                Step::Login(login) => {
                    self.input.advance(used);
                    self.phase = Phase::Open;
                    return Some(Event::LoginRequested(login));
                }
                Step::Logout => {
                    self.input.advance(used);
                    return Some(self.close(Event::Logout));
                }
                Step::Fail(err) => return Some(self.close(Event::ProtocolError(err))),
            }
        }
    }

    fn step(&self, packet: &Packet<'_>) -> Step {
        match (self.phase, packet) {
            (Phase::Login, Packet::LoginRequest(login)) => Step::Login(*login),
            (Phase::Login, _) => Step::Fail(SessionError::LoginFirst),
            (_, Packet::Unsequenced(_)) => Step::Data,
            (_, Packet::ClientHeartbeat | Packet::Debug(_)) => Step::Ignore,
            (_, Packet::LogoutRequest) => Step::Logout,
            (_, Packet::LoginRequest(_)) => Step::Fail(SessionError::SecondLogin),
            (_, other) => Step::Fail(SessionError::WrongDirection(char::from(other.kind()))),
        }
    }

    fn close(&mut self, event: Event) -> Event {
        self.phase = Phase::Closed;
        self.input.clear();
        event
    }

    /// When [`SessionReader::handle_timeout`] is due: the login deadline,
    /// then the idle deadline; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Login => Some(self.login_deadline),
            Phase::Open => Some(self.last_received + self.idle),
            Phase::Closed => None,
        }
    }

    /// Checks the timers at `now`: [`Event::TimedOut`] when one ran out.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Event> {
        let timeout = match self.phase {
            Phase::Login if now >= self.login_deadline => Timeout::Login,
            Phase::Open if now >= self.last_received + self.idle => Timeout::Idle,
            _ => return None,
        };
        Some(self.close(Event::TimedOut(timeout)))
    }
}

/// What the writer is allowed to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Before the login's answer.
    Login,
    /// Accepted: sequenced data and heartbeats.
    Open,
    /// Rejected or End of Session sent: nothing more.
    Ended,
}

/// The sending half of a server session.
#[derive(Debug)]
pub struct SessionWriter {
    output: BytesMut,
    stage: Stage,
    heartbeat: Duration,
    last_sent: Instant,
    next_seq: u64,
}

impl SessionWriter {
    /// A writer for a connection accepted at `now`.
    pub fn new(timers: Timers, now: Instant) -> SessionWriter {
        SessionWriter {
            output: BytesMut::with_capacity(1024),
            stage: Stage::Login,
            heartbeat: timers.heartbeat,
            last_sent: now,
            next_seq: 1,
        }
    }

    /// Answers the login with Login Accepted: `session`, and `next_seq`,
    /// the number of the next sequenced message (where replay starts).
    pub fn accept(&mut self, session: [u8; SESSION_LEN], next_seq: u64) {
        if self.stage == Stage::Login {
            Packet::LoginAccepted { session, sequence: next_seq }.encode(&mut self.output);
            self.stage = Stage::Open;
            self.next_seq = next_seq;
        }
    }

    /// Answers the login with Login Rejected (`A` not authorized, `S`
    /// session not available); the session ends.
    pub fn reject(&mut self, reason: u8) {
        if self.stage == Stage::Login {
            Packet::LoginRejected(reason).encode(&mut self.output);
            self.stage = Stage::Ended;
        }
    }

    /// The sequence number the next sequenced message carries.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// True after a reject or End of Session.
    pub fn is_ended(&self) -> bool {
        self.stage == Stage::Ended
    }

    /// True when nothing is waiting to be sent.
    pub fn is_idle(&self) -> bool {
        self.output.is_empty()
    }

    /// Queues one message as Sequenced Data; ignored unless logged in.
    pub fn sequenced(&mut self, message: &[u8]) {
        if self.stage == Stage::Open {
            Packet::Sequenced(message).encode(&mut self.output);
            self.next_seq += 1;
        }
    }

    /// Queues the next ready-framed packets of `log` from `cursor` (about
    /// `max_bytes`, at least one if any): replay and the live stream alike.
    /// The cursor and the next sequence number advance together.
    ///
    /// # Errors
    /// Reading the log's file failed.
    pub fn replay(&mut self, log: &DayLog, cursor: &mut Cursor, max_bytes: usize) -> std::io::Result<()> {
        if self.stage != Stage::Open {
            return Ok(());
        }
        log.read(cursor, max_bytes, &mut self.output)?;
        self.next_seq = cursor.seq;
        Ok(())
    }

    /// Queues End of Session; the session ends.
    pub fn end_session(&mut self) {
        if self.stage != Stage::Ended {
            Packet::EndOfSession.encode(&mut self.output);
            self.stage = Stage::Ended;
        }
    }

    /// When the next heartbeat is due (after [`Timers::heartbeat`] of
    /// silence); `None` before the login's answer and after the end.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.stage == Stage::Open).then(|| self.last_sent + self.heartbeat)
    }

    /// Queues a Server Heartbeat when the silence at `now` has lasted a heartbeat interval.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stage == Stage::Open && self.output.is_empty() && now >= self.last_sent + self.heartbeat {
            Packet::ServerHeartbeat.encode(&mut self.output);
        }
    }

    /// Everything queued, to write now; `None` when nothing is.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.output.is_empty() {
            return None;
        }
        self.last_sent = now;
        Some(self.output.split().freeze())
    }
}

/// Both halves of a server session, for a connection run in one task.
#[derive(Debug)]
pub struct ServerSession {
    /// The receiving half.
    pub reader: SessionReader,
    /// The sending half.
    pub writer: SessionWriter,
}

impl ServerSession {
    /// A session for a connection accepted at `now`.
    pub fn new(timers: Timers, now: Instant) -> ServerSession {
        ServerSession { reader: SessionReader::new(timers, now), writer: SessionWriter::new(timers, now) }
    }

    /// The two halves, for a reader task and a writer task.
    pub fn split(self) -> (SessionReader, SessionWriter) {
        (self.reader, self.writer)
    }

    /// Bytes read from the socket at `now`.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        self.reader.receive(bytes, now);
    }

    /// The next event; see [`SessionReader::poll_event`].
    pub fn poll_event(&mut self) -> Option<Event> {
        self.reader.poll_event()
    }

    /// The earliest deadline of either half.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.reader.poll_timeout(), self.writer.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Checks both halves' timers at `now`: queues a heartbeat when due,
    /// returns [`Event::TimedOut`] when the session is over.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Event> {
        self.writer.handle_timeout(now);
        self.reader.handle_timeout(now)
    }

    /// Bytes to write now; see [`SessionWriter::poll_transmit`].
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.writer.poll_transmit(now)
    }
}

/// What a server sent, decoded by a [`ClientSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Login Accepted.
    LoginAccepted {
        /// Session name.
        session: [u8; SESSION_LEN],
        /// The next sequenced message's number.
        sequence: u64,
    },
    /// Login Rejected with its reason.
    LoginRejected(u8),
    /// A sequenced payload with its sequence number.
    Sequenced(u64, Bytes),
    /// Server Heartbeat.
    Heartbeat,
    /// End of Session.
    EndOfSession,
    /// Debug text.
    Debug(Bytes),
}

/// The client side: decodes a server's packets and numbers its sequenced
/// messages. It never sends anything by itself.
#[derive(Debug, Default)]
pub struct ClientSession {
    input: BytesMut,
    next_seq: u64,
}

impl ClientSession {
    /// A session that has not logged in yet.
    pub fn new() -> ClientSession {
        ClientSession { input: BytesMut::with_capacity(1 << 16), next_seq: 0 }
    }

    /// Bytes read from the socket.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// The input buffer with at least `spare` bytes of room, for `read_buf`.
    pub fn read_buffer(&mut self, spare: usize) -> &mut BytesMut {
        self.input.reserve(spare);
        &mut self.input
    }

    /// The number the next sequenced message will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The next packet from the server; `Ok(None)` until a whole one arrived.
    ///
    /// # Errors
    /// The bytes are not SoupBinTCP, or a client packet type came from the
    /// server; the connection cannot go on.
    pub fn poll_event(&mut self) -> Result<Option<ClientEvent>, SessionError> {
        let Some((packet, used)) = packet::next_packet(&self.input)? else {
            return Ok(None);
        };
        let event = match packet {
            Packet::LoginAccepted { session, sequence } => {
                self.next_seq = sequence;
                ClientEvent::LoginAccepted { session, sequence }
            }
            Packet::LoginRejected(reason) => ClientEvent::LoginRejected(reason),
            Packet::ServerHeartbeat => ClientEvent::Heartbeat,
            Packet::EndOfSession => ClientEvent::EndOfSession,
            Packet::Sequenced(_) | Packet::Debug(_) => {
                let sequenced = matches!(packet, Packet::Sequenced(_));
                let seq = self.next_seq;
                if sequenced {
                    self.next_seq = seq.checked_add(1).ok_or(SessionError::SequenceOverflow)?;
                }
                let payload = self.input.split_to(used).freeze().slice(HEADER_LEN..);
                return Ok(Some(if sequenced {
                    ClientEvent::Sequenced(seq, payload)
                } else {
                    ClientEvent::Debug(payload)
                }));
            }
            other => return Err(SessionError::WrongDirection(char::from(other.kind()))),
        };
        self.input.advance(used);
        Ok(Some(event))
    }
}
