//! The tokio side: a listener capped by a connection semaphore; per
//! connection a reader task (login, decode, intake, hand commands to the
//! sequencer in batches) and a writer task (replay and live stream from the
//! user's day log, heartbeats, End of Session). The drop-copy port uses the
//! same connection and writer: a desk's stream is a hub slot like a user's,
//! and its reader accepts only heartbeats and logout.
//!
//! The sequencer's queue is a bounded crossbeam channel: when it is full the
//! reader stops reading its socket (TCP pushes back on the client) instead of
//! blocking a runtime thread or growing memory.

use crate::daylog::Cursor;
use crate::hub::Hub;
use crate::intake::Intake;
use crate::ouch::Inbound;
use crate::soup::{self, LoginRequest, Packet, SESSION_LEN, SoupError};
use carbonx_engine::{Command, UserId};
use crossbeam::channel::{Sender, TrySendError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
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
const _: () = assert!(WRITE_CHUNK_MAX > 2 * crate::soup::PAYLOAD_LEN_MAX);

/// The order-entry server.
pub struct Gateway {
    hub: Arc<Hub>,
    commands: Sender<Vec<Command>>,
    started: Instant,
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
    #[error("protocol error: {0}")]
    Protocol(#[from] SoupError),
    #[error("{0}")]
    Rule(&'static str),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Gateway {
    /// A gateway over `hub`, sending commands to the sequencer on `commands`.
    pub fn new(hub: Arc<Hub>, commands: Sender<Vec<Command>>) -> Arc<Gateway> {
        Arc::new(Gateway { hub, commands, started: Instant::now() })
    }

    /// Accepts connections until `shutdown` turns true.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        self.listen(listener, shutdown, Port::OrderEntry).await;
    }

    /// Serves drop-copy desks on `listener` until `shutdown` turns true.
    pub async fn serve_drop_copy(self: Arc<Self>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        self.listen(listener, shutdown, Port::DropCopy).await;
    }

    /// Accepts connections on `listener` (capped at `connections_max`
    /// per port) until `shutdown` turns true.
    async fn listen(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>, port: Port) {
        let permits = Arc::new(Semaphore::new(self.hub.config.connections_max));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.changed() => break,
            };
            let (socket, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, max = self.hub.config.connections_max, "connection refused: at the cap");
                drop(socket);
                continue;
            };
            let gateway = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                gateway.connection(socket, peer, shutdown, port).await;
                drop(permit);
            });
        }
        tracing::info!(?port, "listener stopped");
    }

    async fn connection(
        self: Arc<Self>,
        socket: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
        port: Port,
    ) {
        let _ = socket.set_nodelay(true);
        let (mut reader, mut writer) = socket.into_split();
        let mut buf = Vec::with_capacity(READ_CHUNK);
        let login_timeout = Duration::from_millis(self.hub.config.login_timeout_ms);
        let login = match tokio::time::timeout(login_timeout, read_login(&mut reader, &mut buf)).await {
            Ok(Ok(login)) => login,
            Ok(Err(err)) => return tracing::info!(%peer, %err, "connection closed before login"),
            Err(_) => return tracing::info!(%peer, "no login within the timeout; closed"),
        };
        let (user, session, cursor) = match self.accept_login(&login, &mut writer, port).await {
            Ok(Some(accepted)) => accepted,
            Ok(None) => return,
            Err(err) => return tracing::info!(%peer, %err, "login failed"),
        };
        let name = String::from_utf8_lossy(&login.username).trim().to_string();
        tracing::info!(%peer, user = %name, from = cursor.seq, "logged in");
        let (closed_tx, closed_rx) = watch::channel(false);
        let mut writer_task = tokio::spawn(Arc::clone(&self).writer(writer, user, session, cursor, closed_rx));
        let mut writer_ended = None;
        // Whichever half ends first ends the connection.
        let read = async {
            match port {
                Port::OrderEntry => self.reader(reader, buf, user, shutdown).await,
                Port::DropCopy => self.drop_copy_reader(reader, buf, shutdown).await,
            }
        };
        let result = tokio::select! {
            result = read => result,
            joined = &mut writer_task => {
                writer_ended = Some(joined);
                Ok(())
            }
            () = self.hub.slot(user).kick.notified() => Err(ConnectionError::Rule("disconnected by the operator")),
        };
        let _ = closed_tx.send(true);
        let socket = match writer_ended {
            Some(joined) => joined,
            None => writer_task.await,
        };
        self.end_session(user).await;
        if let Ok(mut socket) = socket {
            let _ = socket.shutdown().await;
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
        writer: &mut OwnedWriteHalf,
        port: Port,
    ) -> Result<Option<(UserId, [u8; SESSION_LEN], Cursor)>, ConnectionError> {
        let mut out = Vec::with_capacity(64);
        let directory = &self.hub.directory;
        let stream = match port {
            Port::OrderEntry => directory.authenticate(&login.username, &login.password).map(|u| u.id),
            Port::DropCopy => directory.authenticate_desk(&login.username, &login.password).map(|d| d.slot),
        };
        let Some(user) = stream else {
            tracing::info!(user = %String::from_utf8_lossy(&login.username), "login rejected: not authorized");
            Packet::LoginRejected(b'A').encode(&mut out);
            writer.write_all(&out).await?;
            return Ok(None);
        };
        let current = self.hub.session();
        let wrong_session = login.session != [b' '; SESSION_LEN] && login.session != current;
        if wrong_session || !self.claim_soon(user).await {
            tracing::info!(user = %String::from_utf8_lossy(&login.username), wrong_session, "login rejected: session");
            Packet::LoginRejected(b'S').encode(&mut out);
            writer.write_all(&out).await?;
            return Ok(None);
        }
        let Some((session, cursor)) = self.hub.login_cursor(user, login.sequence) else {
            self.hub.release(user);
            Packet::LoginRejected(b'S').encode(&mut out);
            writer.write_all(&out).await?;
            return Ok(None);
        };
        Packet::LoginAccepted { session, sequence: cursor.seq }.encode(&mut out);
        if let Err(err) = writer.write_all(&out).await {
            self.hub.release(user);
            return Err(err.into());
        }
        Ok(Some((user, session, cursor)))
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

    async fn reader(
        &self,
        mut socket: OwnedReadHalf,
        mut buf: Vec<u8>,
        user: UserId,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ConnectionError> {
        let idle = Duration::from_millis(self.hub.config.idle_timeout_ms);
        let directory = &self.hub.directory;
        let intake = Intake { directory, user: &directory.users[usize::from(user.get())] };
        let mut commands = Vec::new();
        loop {
            let done = self.handle_packets(&intake, &mut buf, &mut commands)?;
            self.send(&mut commands).await;
            if done {
                return Ok(());
            }
            let start = buf.len();
            buf.resize(start + READ_CHUNK, 0);
            let read = tokio::select! {
                read = tokio::time::timeout(idle, socket.read(&mut buf[start..])) => read,
                _ = shutdown.changed() => return Ok(()),
            };
            let n = match read {
                Ok(read) => read?,
                Err(_) => return Err(ConnectionError::Rule("nothing received within the idle timeout")),
            };
            buf.truncate(start + n);
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// A desk's side of a drop-copy connection: heartbeats and logout
    /// only; the port is read-only, so any data closes the connection.
    async fn drop_copy_reader(
        &self,
        mut socket: OwnedReadHalf,
        mut buf: Vec<u8>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ConnectionError> {
        let idle = Duration::from_millis(self.hub.config.idle_timeout_ms);
        loop {
            let mut used = 0;
            while let Some((packet, len)) = soup::next_packet(&buf[used..])? {
                used += len;
                match packet {
                    Packet::ClientHeartbeat | Packet::Debug(_) => {}
                    Packet::LogoutRequest => return Ok(()),
                    Packet::Unsequenced(_) => return Err(ConnectionError::Rule("drop copy is read-only: data sent")),
                    _ => return Err(ConnectionError::Rule("a packet a drop-copy client may not send")),
                }
            }
            buf.drain(..used);
            let start = buf.len();
            buf.resize(start + READ_CHUNK, 0);
            let read = tokio::select! {
                read = tokio::time::timeout(idle, socket.read(&mut buf[start..])) => read,
                _ = shutdown.changed() => return Ok(()),
            };
            let n = read.map_err(|_| ConnectionError::Rule("nothing received within the idle timeout"))??;
            buf.truncate(start + n);
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// Consumes every whole packet in `buf`; true when the client logged out.
    fn handle_packets(
        &self,
        intake: &Intake<'_>,
        buf: &mut Vec<u8>,
        commands: &mut Vec<Command>,
    ) -> Result<bool, ConnectionError> {
        let mut used = 0;
        let mut logout = false;
        while let Some((packet, len)) = soup::next_packet(&buf[used..])? {
            used += len;
            match packet {
                Packet::Unsequenced(bytes) => {
                    self.hub.counters.messages_in.count(bytes.first().copied().unwrap_or(0));
                    let now = self.started.elapsed().as_nanos() as u64;
                    let command = match Inbound::decode(bytes) {
                        Ok(inbound) => {
                            intake.command(&inbound, &mut self.hub.slot(intake.user.id).throttle.lock(), now)
                        }
                        Err(err) => {
                            tracing::info!(%err, "invalid OUCH message; rejected");
                            intake.malformed(bytes)
                        }
                    };
                    commands.push(command);
                }
                Packet::ClientHeartbeat | Packet::Debug(_) => {}
                Packet::LogoutRequest => {
                    logout = true;
                    break;
                }
                Packet::LoginRequest(_) => return Err(ConnectionError::Rule("a second login on one connection")),
                _ => return Err(ConnectionError::Rule("a server packet type from the client")),
            }
        }
        buf.drain(..used);
        Ok(logout)
    }

    /// Hands commands to the sequencer; waits (without blocking the
    /// runtime) while its queue is full.
    async fn send(&self, commands: &mut Vec<Command>) {
        while !commands.is_empty() {
            let take = commands.len().min(COMMANDS_PER_SEND_MAX);
            let mut batch: Vec<Command> = commands.drain(..take).collect();
            loop {
                match self.commands.try_send(batch) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => {
                        batch = back;
                        tokio::time::sleep(Duration::from_micros(100)).await;
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        tracing::warn!("the sequencer has stopped; commands dropped unacknowledged");
                        commands.clear();
                        return;
                    }
                }
            }
        }
    }

    async fn writer(
        self: Arc<Self>,
        mut socket: OwnedWriteHalf,
        user: UserId,
        session: [u8; SESSION_LEN],
        mut cursor: Cursor,
        mut closed: watch::Receiver<bool>,
    ) -> OwnedWriteHalf {
        let heartbeat = Duration::from_millis(self.hub.config.heartbeat_ms);
        let slot = self.hub.slot(user);
        let mut out = Vec::with_capacity(WRITE_CHUNK_MAX);
        loop {
            out.clear();
            let ended = {
                let stream = slot.stream.lock();
                match stream.log_of(&session) {
                    Some(log) => {
                        if let Err(err) = log.read(&mut cursor, WRITE_CHUNK_MAX, &mut out) {
                            tracing::error!(%err, "session day log read failed");
                            break;
                        }
                        out.is_empty() && stream.session != session
                    }
                    None => true,
                }
            };
            if ended {
                out.clear();
                Packet::EndOfSession.encode(&mut out);
                let _ = socket.write_all(&out).await;
                break;
            }
            if !out.is_empty() {
                if socket.write_all(&out).await.is_err() {
                    break;
                }
                continue;
            }
            tokio::select! {
                _ = slot.wake.notified() => {}
                _ = tokio::time::sleep(heartbeat) => {
                    out.clear();
                    Packet::ServerHeartbeat.encode(&mut out);
                    if socket.write_all(&out).await.is_err() {
                        break;
                    }
                }
                _ = closed.changed() => break,
            }
        }
        socket
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
            self.send(&mut vec![Command::CancelUser(user)]).await;
        }
        self.hub.release(user);
    }
}

/// Reads until the first packet, which must be a Login Request.
async fn read_login(socket: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> Result<LoginRequest, ConnectionError> {
    loop {
        if let Some((packet, used)) = soup::next_packet(buf)? {
            let Packet::LoginRequest(login) = packet else {
                return Err(ConnectionError::Rule("the first packet was not a Login Request"));
            };
            buf.drain(..used);
            return Ok(login);
        }
        let start = buf.len();
        buf.resize(start + 256, 0);
        let n = socket.read(&mut buf[start..]).await?;
        buf.truncate(start + n);
        if n == 0 {
            return Err(ConnectionError::Rule("closed by the client"));
        }
    }
}
