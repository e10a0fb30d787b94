//! The feed over TCP (SoupBinTCP sequenced packets carrying ITCH) and the
//! snapshot service. Both accept a login with any username and password in
//! the demo market (PROTOCOL §9, §10).
//!
//! TCP feed: a consumer logs in with a sequence number (1 = the whole day,
//! 0 = only new messages), is replayed from the day log and then follows
//! live. It reads the log at its own pace; when it falls more than its
//! backlog cap behind the live end it is disconnected with a log line and
//! may log in again from its next number. The feed thread never waits.
//!
//! Snapshot: after the login, `R`, `J`, `H` and every resting order as `A`,
//! then `G` with the first sequence number not reflected, then End of Session.

use crate::itch::{EndOfSnapshot, Message};
use crate::service::FeedShared;
use bytes::Bytes;
use carbonx_soup::daylog::Cursor;
use carbonx_soup::packet::{LoginRequest, SESSION_LEN};
use carbonx_soup::server::{Incoming, LoginError, deadline_of, read_login, read_once};
use carbonx_soup::session::{Event, ServerSession, SessionError, SessionWriter, Timeout, Timers};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

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
    /// The socket or the day log's file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Default unsent backlog past which a TCP consumer is cut off.
pub const BACKLOG_MAX: u64 = 8 << 20;
/// Bytes sent per socket write at most.
const WRITE_CHUNK: usize = 64 * 1024;
/// Consumers at most per listener.
pub const CONSUMERS_MAX: usize = 256;

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

/// Accepts consumers until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    shared: Arc<FeedShared>,
    config: TcpFeedConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(CONSUMERS_MAX));
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, ?service, "feed connection refused: at the cap");
            continue;
        };
        let (shared, shutdown) = (Arc::clone(&shared), shutdown.clone());
        tokio::spawn(async move {
            let result = match service {
                Service::Feed => stream(socket, &shared, config, shutdown).await,
                Service::Snapshot => snapshot(socket, &shared, config).await,
            };
            if let Err(reason) = result {
                tracing::info!(%peer, ?service, %reason, "feed consumer disconnected");
            }
            drop(permit);
        });
    }
}

/// Writes what the session has queued.
async fn transmit(socket: &mut TcpStream, writer: &mut SessionWriter) -> Result<(), ConsumerError> {
    if let Some(bytes) = writer.poll_transmit(Instant::now()) {
        socket.write_all(&bytes).await?;
    }
    Ok(())
}

async fn snapshot(mut socket: TcpStream, shared: &FeedShared, config: TcpFeedConfig) -> Result<(), ConsumerError> {
    let mut session = ServerSession::new(config.timers(), Instant::now());
    read_login(&mut socket, &mut session.reader).await?;
    let (name, messages, next) = {
        let state = shared.state.lock();
        let next = state.log.as_ref().map_or(1, |l| l.next_seq());
        (state.session, state.book.snapshot(state.last_ns), next)
    };
    let writer = &mut session.writer;
    writer.accept(name, 1);
    transmit(&mut socket, writer).await?;
    let mut encoded = [0u8; crate::itch::MESSAGE_LEN_MAX];
    for message in messages.iter().chain([&Message::EndOfSnapshot(EndOfSnapshot { sequence: next })]) {
        let len = message.encode(&mut encoded);
        writer.sequenced(&encoded[..len]);
    }
    writer.end_session();
    transmit(&mut socket, writer).await?;
    let _ = socket.shutdown().await;
    Ok(())
}

async fn stream(
    mut socket: TcpStream,
    shared: &FeedShared,
    config: TcpFeedConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConsumerError> {
    let _ = socket.set_nodelay(true);
    let ServerSession { mut reader, mut writer } = ServerSession::new(config.timers(), Instant::now());
    let login = read_login(&mut socket, &mut reader).await?;
    let mut live = shared.next_seq.subscribe();
    let Some((session, mut cursor)) = start_cursor(shared, &login)? else {
        writer.reject(b'S');
        transmit(&mut socket, &mut writer).await?;
        return Err(ConsumerError::SessionNotAvailable);
    };
    writer.accept(session, cursor.seq);
    transmit(&mut socket, &mut writer).await?;
    let peer = socket.peer_addr()?;
    let listed = shared.register(peer);
    loop {
        listed.consumer.sent.store(cursor.offset, std::sync::atomic::Ordering::Relaxed);
        let ended = fill(shared, &session, &mut cursor, &mut writer, config.backlog_max)?;
        if let Some(out) = writer.poll_transmit(Instant::now()) {
            write_watching_backlog(&mut socket, &out, shared, &cursor, &mut live, config.backlog_max).await?;
            continue;
        }
        if ended {
            writer.end_session();
            transmit(&mut socket, &mut writer).await?;
            return Ok(());
        }
        let heartbeat = deadline_of(writer.poll_timeout());
        tokio::select! {
            _ = live.changed() => {}
            _ = tokio::time::sleep_until(heartbeat) => {
                writer.handle_timeout(Instant::now());
                transmit(&mut socket, &mut writer).await?;
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

/// Writes `out`; while the consumer is not reading, keeps checking how far
/// the live feed has run ahead of it and gives up past the cap, so a stuck
/// consumer is cut off instead of holding its connection forever.
async fn write_watching_backlog(
    socket: &mut TcpStream,
    out: &Bytes,
    shared: &FeedShared,
    cursor: &Cursor,
    live: &mut watch::Receiver<([u8; SESSION_LEN], u64)>,
    backlog_max: u64,
) -> Result<(), ConsumerError> {
    let write = socket.write_all(out);
    tokio::pin!(write);
    loop {
        tokio::select! {
            written = &mut write => return Ok(written?),
            changed = live.changed() => {
                if changed.is_err() {
                    return Err(ConsumerError::FeedStopped);
                }
                let end = shared.state.lock().log.as_ref().map_or(0, |l| l.end().offset);
                let backlog = (end + out.len() as u64).saturating_sub(cursor.offset);
                if backlog > backlog_max {
                    return Err(ConsumerError::Backlog { backlog, cap: backlog_max });
                }
            }
        }
    }
}
