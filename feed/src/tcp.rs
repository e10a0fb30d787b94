//! The feed over TCP (SoupBinTCP sequenced packets carrying ITCH) and the
//! snapshot service (PROTOCOL §9, §10).
//!
//! Every connection first takes a place among its source address's
//! connections waiting to log in (at most `prelogin_per_address_max`, and
//! at most [`CONSUMERS_MAX`] waiting in all), then logs in: the username
//! and password are checked against the feed's users ([`Logins`]; anyone
//! in the demo market), and the user takes one of its
//! `connections_per_user_max` places and one of the listener's
//! [`CONSUMERS_MAX`] slots. A heartbeating consumer holds a slot of its
//! own user, never of another. Every socket write has a deadline
//! (`write_timeout`): a consumer that does not read is cut off.
//!
//! Either listener may run under TLS ([`Accept`]): the handshake comes
//! first, within the login timeout and while the connection still holds
//! its place among those waiting to log in, so a client that never
//! finishes it takes no more than one waiting place.
//!
//! TCP feed: a consumer logs in with a sequence number (1 = the whole day,
//! 0 = only new messages), is replayed from the day log and then follows
//! live. It reads the log at its own pace; when it falls more than its
//! backlog cap behind the live end it is disconnected with a log line and
//! may log in again from its next number. The feed thread never waits.
//!
//! Snapshot: after the login, `R`, `J`, `H` and every resting order as `A`,
//! then `G` with the first sequence number not reflected, then End of
//! Session; built off the feed thread and shared ([`Snapshots`]).

use crate::access::{Logins, PerAddress, PerUser, Place, Username};
use crate::counters::Connected;
use crate::service::FeedShared;
use crate::snapshot::{Pacer, Snapshots};
use bytes::Bytes;
use carbonx_soup::daylog::Cursor;
use carbonx_soup::packet::{LoginRequest, SESSION_LEN};
use carbonx_soup::server::{Incoming, LoginError, deadline_of, next_connection, read_login, read_once};
use carbonx_soup::session::{Event, ServerSession, SessionError, SessionWriter, Timeout, Timers};
use carbonx_soup::stream::{Accept, Stream};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Why a feed or snapshot consumer was disconnected (logged, never sent).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// No login: another packet first, bad bytes, the timeout or a close.
    #[error("login: {0}")]
    Login(#[from] LoginError),
    /// The consumer broke SoupBinTCP after the login.
    #[error(transparent)]
    Protocol(#[from] SessionError),
    /// Nothing received within the idle timeout.
    #[error("nothing received within the idle timeout")]
    Idle,
    /// The consumer sent data; a feed is read-only.
    #[error("unexpected packet from a feed consumer")]
    Unexpected,
    /// The login asked for another session, or there is no trading day yet.
    #[error("session not available")]
    SessionNotAvailable,
    /// The consumer fell further behind the live end than its cap.
    #[error("backlog of {backlog} bytes passed the cap of {cap}")]
    Backlog {
        /// Unsent bytes.
        backlog: u64,
        /// The cap.
        cap: u64,
    },
    /// The feed thread stopped.
    #[error("the feed stopped")]
    FeedStopped,
    /// A write did not complete within the write timeout: the consumer
    /// does not read.
    #[error("a write did not complete within {0:?}")]
    WriteTimeout(Duration),
    /// The login was refused (`J` sent): a wrong username or password
    /// (`A`), or the user or the listener at its connection cap (`S`).
    #[error("login refused ({})", char::from(*.0))]
    Refused(u8),
    /// The socket or the day log's file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Default unsent backlog past which a TCP consumer is cut off.
pub const BACKLOG_MAX: u64 = 8 << 20;
/// Bytes sent per socket write at most.
const WRITE_CHUNK: usize = 64 * 1024;
/// Consumers logged in at most per listener, and connections waiting to
/// log in at most per listener.
pub const CONSUMERS_MAX: usize = 256;
/// Default connections one user may hold on one listener.
pub const PER_USER_MAX: usize = 4;
/// Default connections one source address may have waiting to log in.
pub const PRELOGIN_PER_ADDRESS_MAX: usize = 16;
/// Default deadline of one socket write.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of both services.
#[derive(Clone, Copy, Debug)]
pub struct TcpFeedConfig {
    /// Backlog cap per consumer, bytes.
    pub backlog_max: u64,
    /// Heartbeat after this much silence.
    pub heartbeat: Duration,
    /// Login deadline.
    pub login_timeout: Duration,
    /// Nothing received for this long ends the connection.
    pub idle_timeout: Duration,
    /// A socket write not done within this ends the connection.
    pub write_timeout: Duration,
    /// Connections one user may hold on one listener.
    pub per_user_max: usize,
    /// Connections one source address may have waiting to log in.
    pub prelogin_per_address_max: usize,
    /// Bytes per second the snapshot port sends, all connections together.
    pub snapshot_bytes_per_second: u64,
}

impl TcpFeedConfig {
    /// The session timers.
    pub fn timers(&self) -> Timers {
        Timers { login: self.login_timeout, heartbeat: self.heartbeat, idle: self.idle_timeout }
    }
}

impl Default for TcpFeedConfig {
    fn default() -> Self {
        TcpFeedConfig {
            backlog_max: BACKLOG_MAX,
            heartbeat: carbonx_soup::session::HEARTBEAT,
            login_timeout: carbonx_soup::session::LOGIN_TIMEOUT,
            idle_timeout: carbonx_soup::session::IDLE_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            per_user_max: PER_USER_MAX,
            prelogin_per_address_max: PRELOGIN_PER_ADDRESS_MAX,
            snapshot_bytes_per_second: crate::snapshot::BYTES_PER_SECOND,
        }
    }
}

/// Which service a listener runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Replay and live stream.
    Feed,
    /// One snapshot, then End of Session.
    Snapshot,
}

/// What every connection of one listener shares.
struct Listener {
    accept: Accept,
    service: Service,
    shared: Arc<FeedShared>,
    config: TcpFeedConfig,
    logins: Arc<Logins>,
    waiting: Arc<PerAddress>,
    waiting_all: Arc<Semaphore>,
    per_user: Arc<PerUser>,
    slots: Arc<Semaphore>,
    snapshots: Snapshots,
    /// The snapshot port's byte budget.
    pacer: Pacer,
}

/// A logged-in consumer's places: its user's and the listener's.
struct Slot {
    _user: Place<Username>,
    _listener: OwnedSemaphorePermit,
}

/// Accepts consumers until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    accept: Accept,
    service: Service,
    shared: Arc<FeedShared>,
    config: TcpFeedConfig,
    logins: Arc<Logins>,
    mut shutdown: watch::Receiver<bool>,
) {
    let this = Arc::new(Listener {
        accept,
        service,
        shared,
        config,
        logins,
        waiting: PerAddress::new(config.prelogin_per_address_max),
        waiting_all: Arc::new(Semaphore::new(CONSUMERS_MAX)),
        per_user: PerUser::new(config.per_user_max),
        slots: Arc::new(Semaphore::new(CONSUMERS_MAX)),
        snapshots: Snapshots::default(),
        pacer: Pacer::new(config.snapshot_bytes_per_second),
    });
    loop {
        let Some((socket, peer)) = next_connection(&listener, &mut shutdown, "feed").await else {
            break;
        };
        let Some(waiting) = this.admit_before_login(peer.ip()) else {
            tracing::debug!(%peer, ?service, "feed connection refused: too many waiting to log in");
            continue;
        };
        let (this, shutdown) = (Arc::clone(&this), shutdown.clone());
        tokio::spawn(async move {
            if let Err(reason) = this.connection(socket, waiting, shutdown).await {
                tracing::info!(%peer, ?service, %reason, "feed consumer disconnected");
            }
        });
    }
}

impl Listener {
    /// A place among the connections waiting to log in: the address's and the listener's.
    fn admit_before_login(&self, address: IpAddr) -> Option<(Place<IpAddr>, OwnedSemaphorePermit)> {
        let place = self.waiting.admit(address)?;
        let permit = Arc::clone(&self.waiting_all).try_acquire_owned().ok()?;
        Some((place, permit))
    }

    /// One connection: the login, then the service.
    async fn connection(
        &self,
        socket: TcpStream,
        waiting: (Place<IpAddr>, OwnedSemaphorePermit),
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), ConsumerError> {
        let _ = socket.set_nodelay(true);
        let mut socket = self.accept.accept(socket, self.config.login_timeout).await?;
        let ServerSession { mut reader, mut writer } = ServerSession::new(self.config.timers(), Instant::now());
        let login = read_login(&mut socket, &mut reader).await?;
        let slot = self.log_in(&login).await;
        drop(waiting);
        let _slot = match slot {
            Ok(slot) => slot,
            Err(reason) => {
                self.shared.counters.logins_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                writer.reject(reason);
                transmit(&mut socket, &mut writer, self.config.write_timeout).await?;
                return Err(ConsumerError::Refused(reason));
            }
        };
        let counters = &self.shared.counters;
        let _counted = Connected::new(match self.service {
            Service::Feed => &counters.tcp_connections,
            Service::Snapshot => &counters.snapshot_connections,
        });
        match self.service {
            Service::Feed => stream(socket, &self.shared, self.config, (reader, writer), &login, shutdown).await,
            Service::Snapshot => self.snapshot(socket, writer).await,
        }
    }

    /// The login's places, or the reject reason: `A` for a wrong username
    /// or password, `S` when the user or the listener is at its cap.
    async fn log_in(&self, login: &LoginRequest) -> Result<Slot, u8> {
        if !self.logins.check(&login.username, &login.password).await {
            return Err(b'A');
        }
        let user = self.per_user.admit(login.username).ok_or(b'S')?;
        let listener = Arc::clone(&self.slots).try_acquire_owned().map_err(|_| b'S')?;
        Ok(Slot { _user: user, _listener: listener })
    }

    /// Sends the latest shared snapshot within the port's byte budget,
    /// then End of Session.
    async fn snapshot(&self, mut socket: Stream, mut writer: SessionWriter) -> Result<(), ConsumerError> {
        let built = self.snapshots.get(&self.shared).await;
        writer.accept(built.session, 1);
        transmit(&mut socket, &mut writer, self.config.write_timeout).await?;
        for chunk in built.packets.chunks(WRITE_CHUNK) {
            let wait = self.pacer.take(chunk.len(), Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            write_within(&mut socket, chunk, self.config.write_timeout).await?;
        }
        let _ = tokio::time::timeout(self.config.write_timeout, socket.shutdown()).await;
        Ok(())
    }
}

/// Writes `bytes` within `deadline`.
async fn write_within(socket: &mut Stream, bytes: &[u8], deadline: Duration) -> Result<(), ConsumerError> {
    match tokio::time::timeout(deadline, socket.write_all(bytes)).await {
        Ok(written) => Ok(written?),
        Err(_) => Err(ConsumerError::WriteTimeout(deadline)),
    }
}

/// Writes what the session has queued, within `deadline`.
async fn transmit(socket: &mut Stream, writer: &mut SessionWriter, deadline: Duration) -> Result<(), ConsumerError> {
    if let Some(bytes) = writer.poll_transmit(Instant::now()) {
        write_within(socket, &bytes, deadline).await?;
    }
    Ok(())
}

/// The TCP feed after the login: replay from the login's number, then live.
async fn stream(
    mut socket: Stream,
    shared: &FeedShared,
    config: TcpFeedConfig,
    (mut reader, mut writer): (carbonx_soup::session::SessionReader, SessionWriter),
    login: &LoginRequest,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConsumerError> {
    let deadline = config.write_timeout;
    let mut live = shared.next_seq.subscribe();
    let Some((session, mut cursor)) = start_cursor(shared, login)? else {
        writer.reject(b'S');
        transmit(&mut socket, &mut writer, deadline).await?;
        return Err(ConsumerError::SessionNotAvailable);
    };
    writer.accept(session, cursor.seq);
    transmit(&mut socket, &mut writer, deadline).await?;
    let peer = socket.tcp().peer_addr()?;
    let listed = shared.register(peer);
    loop {
        listed.consumer.sent.store(cursor.offset, std::sync::atomic::Ordering::Relaxed);
        let ended = fill(shared, &session, &mut cursor, &mut writer, config.backlog_max)?;
        if let Some(out) = writer.poll_transmit(Instant::now()) {
            write_watching_backlog(&mut socket, &out, shared, &cursor, &mut live, config).await?;
            continue;
        }
        if ended {
            writer.end_session();
            transmit(&mut socket, &mut writer, deadline).await?;
            return Ok(());
        }
        let heartbeat = deadline_of(writer.poll_timeout());
        tokio::select! {
            _ = live.changed() => {}
            _ = tokio::time::sleep_until(heartbeat) => {
                writer.handle_timeout(Instant::now());
                transmit(&mut socket, &mut writer, deadline).await?;
            }
            read = read_once(&mut socket, &mut reader, 512) => match read? {
                Incoming::Bytes | Incoming::Nothing => {
                    if consumer_events(&mut reader)? {
                        return Ok(());
                    }
                }
                Incoming::Closed => return Ok(()),
                Incoming::Event(_) => return Err(ConsumerError::Idle),
            },
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Queues the next packets for a consumer in its session; true when its
/// session ended.
fn fill(
    shared: &FeedShared,
    session: &[u8; SESSION_LEN],
    cursor: &mut Cursor,
    writer: &mut SessionWriter,
    backlog_max: u64,
) -> Result<bool, ConsumerError> {
    let state = shared.state.lock();
    if &state.session != session {
        return Ok(true);
    }
    let Some(log) = state.log.as_ref() else { return Ok(true) };
    let backlog = log.end().offset - cursor.offset;
    if backlog > backlog_max {
        return Err(ConsumerError::Backlog { backlog, cap: backlog_max });
    }
    writer.replay(log, cursor, WRITE_CHUNK)?;
    Ok(false)
}

/// Handles what a consumer sent; true on logout.
fn consumer_events(reader: &mut carbonx_soup::session::SessionReader) -> Result<bool, ConsumerError> {
    match reader.poll_event() {
        None => Ok(false),
        Some(Event::Logout) => Ok(true),
        Some(Event::ProtocolError(err)) => Err(err.into()),
        Some(Event::TimedOut(Timeout::Idle | Timeout::Login)) => Err(ConsumerError::Idle),
        Some(Event::Unsequenced(_) | Event::LoginRequested(_)) => Err(ConsumerError::Unexpected),
    }
}

/// Where a consumer's login starts it; `None` when the session is not available.
fn start_cursor(
    shared: &FeedShared,
    login: &LoginRequest,
) -> Result<Option<([u8; SESSION_LEN], Cursor)>, ConsumerError> {
    let state = shared.state.lock();
    let wrong = login.session != [b' '; SESSION_LEN] && login.session != state.session;
    let Some(log) = state.log.as_ref().filter(|_| !wrong) else {
        return Ok(None);
    };
    let cursor = if login.sequence == 0 { log.end() } else { log.seek(login.sequence)? };
    Ok(Some((state.session, cursor)))
}

/// Writes `out` within the write timeout; while the consumer is not
/// reading, keeps checking how far the live feed has run ahead of it and
/// gives up past the cap, so a stuck consumer is cut off instead of
/// holding its connection forever.
async fn write_watching_backlog(
    socket: &mut Stream,
    out: &Bytes,
    shared: &FeedShared,
    cursor: &Cursor,
    live: &mut watch::Receiver<([u8; SESSION_LEN], u64)>,
    config: TcpFeedConfig,
) -> Result<(), ConsumerError> {
    let write = socket.write_all(out);
    tokio::pin!(write);
    let deadline = tokio::time::sleep(config.write_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            written = &mut write => return Ok(written?),
            () = &mut deadline => return Err(ConsumerError::WriteTimeout(config.write_timeout)),
            changed = live.changed() => {
                if changed.is_err() {
                    return Err(ConsumerError::FeedStopped);
                }
                let end = shared.state.lock().log.as_ref().map_or(0, |l| l.end().offset);
                let backlog = (end + out.len() as u64).saturating_sub(cursor.offset);
                if backlog > config.backlog_max {
                    return Err(ConsumerError::Backlog { backlog, cap: config.backlog_max });
                }
            }
        }
    }
}
