//! The tokio side: a listener capped by a connection semaphore; per
//! connection a reader task (login, decode, intake, hand commands to the
//! sequencer in batches) and a writer task (replay and live stream from the
//! user's day log, heartbeats, End of Session). The SoupBinTCP rules (login
//! first and in time, heartbeats, the idle timeout, sequence numbers) are
//! the [`carbonx_soup::session`] state machine's: the reader drives its
//! [`SessionReader`] half, the writer its [`SessionWriter`] half. The drop-copy port uses the
//! same connection and writer: a desk's stream is a hub slot like a user's,
//! and its reader accepts only heartbeats and logout.
//!
//! The sequencer's queue is a bounded crossbeam channel: when it is full the
//! reader stops reading its socket (TCP pushes back on the client) instead of
//! blocking a runtime thread or growing memory.

use crate::fair::{FairQueue, Full};
use crate::hub::Hub;
use crate::intake::Intake;
use crate::logins::LoginFailures;
use crate::ouch::Inbound;
use crate::prelogin::{PreLogin, PreLoginGuard};
use carbonx_engine::{Command, UserId};
use carbonx_soup::daylog::Cursor;
use carbonx_soup::packet::{LoginRequest, PAYLOAD_LEN_MAX, SESSION_LEN};
use carbonx_soup::server::{Incoming, LoginError, deadline_of, next_connection, read_login, read_once};
use carbonx_soup::session::{Event, ServerSession, SessionError, SessionReader, SessionWriter, Timeout, Timers};
use carbonx_soup::stream::{Accept, ReadHalf, WriteHalf};
use crossbeam::channel::Sender;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Bytes a writer sends per socket write at most (replay batches).
pub const WRITE_CHUNK_MAX: usize = 64 * 1024;
/// Bytes a reader reads per socket read.
const READ_CHUNK: usize = 16 * 1024;
/// Commands handed to the sequencer in one queue operation at most.
pub const COMMANDS_PER_SEND_MAX: usize = 1_024;

/// How long a login waits for the same username's closing connection
/// to free it before it is refused as a second login (`J` `S`).
pub const RELEASE_WAIT: Duration = Duration::from_millis(500);
/// How long a closing connection waits for its writer to send what is
/// still queued (at most; never longer than the write timeout) before it
/// drops the socket: a client that does not read cannot delay the end of
/// its session, its cancel-on-disconnect or the operator's disconnect.
pub const CLOSE_GRACE: Duration = Duration::from_millis(500);
const _: () = assert!(WRITE_CHUNK_MAX > 2 * PAYLOAD_LEN_MAX);

/// The order-entry server.
pub struct Gateway {
    hub: Arc<Hub>,
    /// The users' commands on their way to the sequencer, fair between users.
    queue: Arc<FairQueue>,
    started: Instant,
    /// Failed logins of both ports (they share usernames).
    failures: LoginFailures,
    /// Password checks running at once, at most [`VERIFYING_MAX`].
    verifying: Semaphore,
}

/// Password checks (argon2, milliseconds of CPU each) running at once at
/// most: a burst of logins queues instead of taking every core.
pub const VERIFYING_MAX: usize = 2;

impl Drop for Gateway {
    /// The last connection and listener are gone: the forwarder hands on
    /// what is queued and stops, which closes the sequencer's queue.
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// Order entry: users log in, send OUCH, receive their stream.
    OrderEntry,
    /// Drop copy: risk desks log in and receive a copy of their users'
    /// streams; they send nothing but heartbeats and logout.
    DropCopy,
}

/// Why a connection ended early (logged, never sent).
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    /// The client broke SoupBinTCP (bad framing, no login first, a second
    /// login, a server packet type).
    #[error("{0}")]
    Protocol(#[from] SessionError),
    /// A timer ran out: no login in time, or nothing received for the idle timeout.
    #[error("{}", timeout_text(*.0))]
    TimedOut(Timeout),
    /// A rule of this port or the operator ended it.
    #[error("{0}")]
    Rule(&'static str),
    /// A write to the client did not finish within the write timeout (the
    /// client does not read).
    #[error("a write to the client did not finish within the write timeout")]
    WriteTimedOut,
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Writes all of `bytes` to `socket` within `limit`.
async fn write_within(socket: &mut WriteHalf, bytes: &[u8], limit: Duration) -> Result<(), ConnectionError> {
    // `flush` hands TLS records still buffered in rustls to the socket
    // (a no-op on plain TCP).
    let write = async {
        socket.write_all(bytes).await?;
        socket.flush().await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(written) => Ok(written?),
        Err(_) => Err(ConnectionError::WriteTimedOut),
    }
}

fn timeout_text(timeout: Timeout) -> &'static str {
    match timeout {
        Timeout::Login => "no login within the timeout",
        Timeout::Idle => "nothing received within the idle timeout",
    }
}

/// The connection-ending meaning of a reader event; data is one only on the
/// read-only drop-copy port (order entry hands it to the intake instead).
fn ending(event: Event) -> Result<(), ConnectionError> {
    match event {
        Event::Logout => Ok(()),
        Event::TimedOut(timeout) => Err(ConnectionError::TimedOut(timeout)),
        Event::ProtocolError(err) => Err(err.into()),
        Event::LoginRequested(_) => Err(SessionError::SecondLogin.into()),
        Event::Unsequenced(_) => Err(ConnectionError::Rule("drop copy is read-only: data sent")),
    }
}

impl Gateway {
    /// A gateway over `hub`, sending commands to the sequencer on
    /// `commands` through its fair queue's forwarder thread.
    ///
    /// # Errors
    /// The forwarder thread could not be started.
    pub fn new(hub: Arc<Hub>, commands: Sender<Vec<Command>>) -> std::io::Result<Arc<Gateway>> {
        let queue = Arc::new(FairQueue::new(hub.slots.len()));
        queue.forward(commands, COMMANDS_PER_SEND_MAX)?;
        let config = &hub.config;
        let failures = LoginFailures::new(
            config.login_failures_max,
            Duration::from_millis(config.login_lockout_ms),
            Duration::from_millis(config.login_failure_delay_ms),
        );
        let verifying = Semaphore::new(VERIFYING_MAX);
        Ok(Arc::new(Gateway { hub, queue, started: Instant::now(), failures, verifying }))
    }

    /// Accepts connections (plain or TLS, as `accept` says) until
    /// `shutdown` turns true.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, accept: Accept, shutdown: watch::Receiver<bool>) {
        self.listen(listener, accept, shutdown, Port::OrderEntry).await;
    }

    /// Serves drop-copy desks on `listener` until `shutdown` turns true.
    pub async fn serve_drop_copy(
        self: Arc<Self>,
        listener: TcpListener,
        accept: Accept,
        shutdown: watch::Receiver<bool>,
    ) {
        self.listen(listener, accept, shutdown, Port::DropCopy).await;
    }

    /// Accepts connections on `listener` (capped at `connections_max`
    /// per port) until `shutdown` turns true.
    async fn listen(
        self: Arc<Self>,
        listener: TcpListener,
        accept: Accept,
        mut shutdown: watch::Receiver<bool>,
        port: Port,
    ) {
        let permits = Arc::new(Semaphore::new(self.hub.config.connections_max));
        let prelogin = PreLogin::new(self.hub.config.prelogin_per_address_max);
        let what = match port {
            Port::OrderEntry => "order entry",
            Port::DropCopy => "drop copy",
        };
        loop {
            let Some((socket, peer)) = next_connection(&listener, &mut shutdown, what).await else {
                break;
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, max = self.hub.config.connections_max, "connection refused: at the cap");
                drop(socket);
                continue;
            };
            let Some(waiting) = prelogin.admit(peer.ip()) else {
                let max = self.hub.config.prelogin_per_address_max;
                tracing::warn!(%peer, max, "connection refused: too many from this address waiting to log in");
                drop(socket);
                continue;
            };
            let gateway = Arc::clone(&self);
            let shutdown = shutdown.clone();
            let accept = accept.clone();
            tokio::spawn(async move {
                gateway.connection(socket, &accept, peer, shutdown, port, waiting).await;
                drop(permit);
            });
        }
        tracing::info!(?port, "listener stopped");
    }

    /// The session timers from the config.
    fn timers(&self) -> Timers {
        let config = &self.hub.config;
        Timers {
            login: Duration::from_millis(config.login_timeout_ms),
            heartbeat: Duration::from_millis(config.heartbeat_ms),
            idle: Duration::from_millis(config.idle_timeout_ms),
        }
    }

    /// The deadline of every socket write to a client.
    fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.hub.config.write_timeout_ms)
    }

    async fn connection(
        self: Arc<Self>,
        socket: TcpStream,
        accept: &Accept,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
        port: Port,
        waiting: PreLoginGuard,
    ) {
        let _ = socket.set_nodelay(true);
        // The handshake counts against the login timeout: a client that
        // connects and stays silent holds its slot no longer under TLS.
        let stream = match accept.accept(socket, self.timers().login).await {
            Ok(stream) => stream,
            Err(err) => return tracing::info!(%peer, %err, "TLS handshake failed; closed"),
        };
        let (mut reader, mut writer) = stream.into_split();
        let (mut input, mut output) = ServerSession::new(self.timers(), Instant::now()).split();
        let login = match read_login(&mut reader, &mut input).await {
            Ok(login) => login,
            Err(LoginError::TimedOut) => return tracing::info!(%peer, "no login within the timeout; closed"),
            Err(err) => return tracing::info!(%peer, %err, "connection closed before login"),
        };
        let accepted = self.accept_login(&login, &mut output, &mut writer, port, peer).await;
        drop(waiting);
        let (user, session, cursor) = match accepted {
            Ok(Some(accepted)) => accepted,
            Ok(None) => return,
            Err(err) => return tracing::info!(%peer, %err, "login failed"),
        };
        let name = String::from_utf8_lossy(&login.username).trim().to_string();
        tracing::info!(%peer, user = %name, from = cursor.seq, "logged in");
        let (closed_tx, closed_rx) = watch::channel(false);
        let mut writer_task = tokio::spawn(Arc::clone(&self).writer(writer, output, user, session, cursor, closed_rx));
        // Whichever half ends first ends the connection.
        let (result, writer_ended) = tokio::select! {
            result = self.reader(reader, input, user, port, shutdown) => (result, None),
            joined = &mut writer_task => (Ok(()), Some(joined)),
            () = self.hub.slot(user).kick.notified() => (Err(ConnectionError::Rule("disconnected by the operator")), None),
        };
        let _ = closed_tx.send(true);
        let joined = match writer_ended {
            Some(joined) => Ok(joined),
            // The writer sends what is queued, for a short while at most.
            None => tokio::time::timeout(CLOSE_GRACE.min(self.write_timeout()), &mut writer_task).await,
        };
        let (socket, result) = match joined {
            Ok(Ok((socket, written))) => (Some(socket), result.and(written)),
            Ok(Err(_)) => (None, result),
            Err(_) => {
                // Stuck in a write: dropping the task drops (closes) its half.
                writer_task.abort();
                (None, result.and(Err(ConnectionError::WriteTimedOut)))
            }
        };
        self.end_session(user).await;
        if let Some(mut socket) = socket {
            let _ = tokio::time::timeout(self.write_timeout(), socket.shutdown()).await;
        }
        match result {
            Ok(()) => tracing::info!(%peer, user = %name, "session ended"),
            Err(err) => tracing::info!(%peer, user = %name, %err, "session closed"),
        }
    }

    /// Checks a login; replies Accepted or Rejected. `None` after a reject.
    async fn accept_login(
        &self,
        login: &LoginRequest,
        output: &mut SessionWriter,
        writer: &mut WriteHalf,
        port: Port,
        peer: SocketAddr,
    ) -> Result<Option<(UserId, [u8; SESSION_LEN], Cursor)>, ConnectionError> {
        let accepted = self.check_login(login, port, peer).await;
        match accepted {
            Ok((_, session, cursor)) => output.accept(session, cursor.seq),
            Err(reason) => output.reject(reason),
        }
        let answer = output.poll_transmit(Instant::now()).unwrap_or_default();
        let written = write_within(writer, &answer, self.write_timeout()).await;
        match (accepted, written) {
            (Ok(accepted), Ok(())) => Ok(Some(accepted)),
            (Ok((user, ..)), Err(err)) => {
                self.hub.release(user);
                Err(err)
            }
            (Err(_), written) => written.map(|()| None),
        }
    }

    /// The login's user (claimed), session and replay start, or the reject
    /// reason: `A` not authorized, `S` session not available.
    async fn check_login(
        &self,
        login: &LoginRequest,
        port: Port,
        peer: SocketAddr,
    ) -> Result<(UserId, [u8; SESSION_LEN], Cursor), u8> {
        if port == Port::OrderEntry && !self.hub.is_serving() {
            return Err(b'S'); // a cluster node that does not lead: at once, no password check
        }
        let Some(user) = self.authenticate(login, port, peer).await else {
            return Err(b'A');
        };
        let current = self.hub.session();
        let wrong_session = login.session != [b' '; SESSION_LEN] && login.session != current;
        if wrong_session || !self.claim_soon(user).await {
            tracing::info!(user = %String::from_utf8_lossy(&login.username), wrong_session, "login rejected: session");
            return Err(b'S');
        }
        let Some((session, cursor)) = self.hub.login_cursor(user, login.sequence) else {
            self.hub.release(user);
            return Err(b'S');
        };
        Ok((user, session, cursor))
    }

    /// The stream of the login's username if its password matches, and
    /// it is not locked out by failed logins (of the username, or from the
    /// address). The password is checked off the runtime (argon2 costs
    /// milliseconds of CPU), a few at a time; a failure answers late.
    async fn authenticate(&self, login: &LoginRequest, port: Port, peer: SocketAddr) -> Option<UserId> {
        let name = login.username;
        let known = self.hub.directory.stream_names().any(|n| *n == name);
        if self.failures.locked_out(&name, peer.ip(), Instant::now()) {
            self.login_failed(&name, peer, "locked out after failed logins").await;
            return None;
        }
        let found = {
            let _permit = self.verifying.acquire().await.ok()?;
            let (hub, password) = (Arc::clone(&self.hub), login.password);
            let check = move || match port {
                Port::OrderEntry => hub.directory.authenticate(&name, &password).map(|u| u.id),
                Port::DropCopy => hub.directory.authenticate_desk(&name, &password).map(|d| d.slot),
            };
            tokio::task::spawn_blocking(check).await.ok().flatten()
        };
        if found.is_none() {
            self.failures.failed(&name, known, peer.ip(), Instant::now());
            self.login_failed(&name, peer, "not authorized").await;
        }
        found
    }

    /// A failed login: counted, logged at a bounded rate, answered after the delay.
    async fn login_failed(&self, name: &[u8; 6], peer: SocketAddr, why: &'static str) {
        self.hub.counters.login_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(left_out) = self.failures.may_log(Instant::now()) {
            let user = String::from_utf8_lossy(name);
            tracing::info!(%peer, %user, why, left_out, "login rejected");
        }
        tokio::time::sleep(self.failures.delay()).await;
    }

    /// Claims the username, waiting (bounded by [`RELEASE_WAIT`]) for a
    /// previous connection that is closing: it frees the username only
    /// after its cancel-on-disconnect is queued, and a client may
    /// reconnect the moment it sees End of Session.
    async fn claim_soon(&self, user: UserId) -> bool {
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        loop {
            if self.hub.claim(user) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A client's side of the connection: order entry hands its messages
    /// to the sequencer; a drop-copy desk may send heartbeats and logout only.
    async fn reader(
        &self,
        mut socket: ReadHalf,
        mut input: SessionReader,
        user: UserId,
        port: Port,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ConnectionError> {
        let directory = &self.hub.directory;
        let intake = match port {
            Port::OrderEntry => Some(Intake { directory, user: &directory.users[usize::from(user.get())] }),
            Port::DropCopy => None,
        };
        let mut commands = Vec::new();
        // Throttle rejects in a row: past the configured number, the connection ends.
        let mut past_limit = 0u32;
        loop {
            let ended = match &intake {
                Some(intake) => self.handle_events(intake, &mut input, &mut commands, &mut past_limit),
                None => input.poll_event().map(ending),
            };
            self.send(user, &mut commands).await;
            if let Some(ended) = ended {
                return ended;
            }
            let read = tokio::select! {
                read = read_once(&mut socket, &mut input, READ_CHUNK) => read?,
                _ = shutdown.changed() => return Ok(()),
            };
            match read {
                Incoming::Bytes | Incoming::Nothing => {}
                Incoming::Closed => return Ok(()),
                Incoming::Event(event) => return ending(event),
            }
        }
    }

    /// Turns the events of every whole packet received into commands;
    /// `Some` when the session is over (logout, or why it failed).
    fn handle_events(
        &self,
        intake: &Intake<'_>,
        input: &mut SessionReader,
        commands: &mut Vec<Command>,
        past_limit: &mut u32,
    ) -> Option<Result<(), ConnectionError>> {
        while let Some(event) = input.poll_event() {
            let Event::Unsequenced(bytes) = event else {
                let ended = ending(event);
                if ended.is_err() {
                    // As before the session layer: the commands read in the
                    // same batch as a protocol error are not handed on.
                    commands.clear();
                }
                return Some(ended);
            };
            self.hub.counters.messages_in.count(bytes.first().copied().unwrap_or(0));
            let now = self.started.elapsed().as_nanos() as u64;
            let decoded = Inbound::decode(&bytes);
            // PROTOCOL §4: cancels are never throttled (a member can always
            // pull its orders); every other message, malformed ones too,
            // takes a token.
            let is_cancel = matches!(decoded, Ok(Inbound::Cancel(_)));
            let allowed = is_cancel || self.hub.slot(intake.user.id).throttle.lock().take(now);
            let command = match (&decoded, allowed) {
                (Ok(inbound), true) => intake.command(inbound),
                (Err(err), true) => {
                    tracing::info!(%err, "invalid OUCH message; rejected");
                    intake.malformed(&bytes)
                }
                (decoded, false) => intake.throttled(decoded.as_ref().ok(), &bytes),
            };
            commands.push(command);
            *past_limit = if allowed { 0 } else { past_limit.saturating_add(1) };
            if *past_limit >= self.hub.config.throttle_rejects_max {
                self.hub.counters.throttle_disconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Some(Err(ConnectionError::Rule("kept sending past its throttle")));
            }
        }
        None
    }

    /// Hands `user`'s commands to the sequencer through the fair queue;
    /// waits (without blocking the runtime) while the user's share is full.
    async fn send(&self, user: UserId, commands: &mut Vec<Command>) {
        while !commands.is_empty() {
            match self.queue.push(usize::from(user.get()), commands) {
                Ok(()) => return,
                Err(Full::User) => tokio::time::sleep(Duration::from_micros(100)).await,
                Err(Full::Closed) => {
                    tracing::warn!("the gateway is closing; commands dropped unacknowledged");
                    commands.clear();
                    return;
                }
            }
        }
    }

    /// The server's side: replay, then the live stream from the user's day
    /// log, heartbeats after silence, End of Session when the day rolled.
    /// Every write has the write timeout; a write that runs out of it ends
    /// the connection. Returns the socket and why it stopped.
    async fn writer(
        self: Arc<Self>,
        mut socket: WriteHalf,
        mut output: SessionWriter,
        user: UserId,
        session: [u8; SESSION_LEN],
        mut cursor: Cursor,
        mut closed: watch::Receiver<bool>,
    ) -> (WriteHalf, Result<(), ConnectionError>) {
        let slot = self.hub.slot(user);
        let limit = self.write_timeout();
        let mut result = Ok(());
        loop {
            let ended = {
                let stream = slot.stream.lock();
                match stream.log_of(&session) {
                    Some(log) => {
                        if let Err(err) = output.replay(log, &mut cursor, WRITE_CHUNK_MAX) {
                            tracing::error!(%err, "session day log read failed");
                            break;
                        }
                        output.is_idle() && stream.session != session
                    }
                    None => true,
                }
            };
            if ended {
                output.end_session();
            }
            if let Some(bytes) = output.poll_transmit(Instant::now()) {
                result = write_within(&mut socket, &bytes, limit).await;
                if result.is_err() || ended {
                    break;
                }
                continue;
            }
            tokio::select! {
                _ = slot.wake.notified() => {}
                _ = tokio::time::sleep_until(deadline_of(output.poll_timeout())) => output.handle_timeout(Instant::now()),
                _ = closed.changed() => break,
            }
        }
        (socket, result)
    }

    /// After both halves of a connection have stopped: cancel-on-disconnect
    /// (queued behind every command the reader handed over, and before the
    /// username is free again, so that it can never cancel orders of the
    /// next connection), then frees the username. The caller closes the
    /// socket afterwards, so that a client reconnecting the moment it sees
    /// the close is not refused as a second login.
    async fn end_session(&self, user: UserId) {
        let cancel = self.hub.directory.user(user).is_some_and(|u| u.cancel_on_disconnect);
        if cancel {
            self.send(user, &mut vec![Command::CancelUser(user)]).await;
        }
        self.hub.release(user);
    }
}
