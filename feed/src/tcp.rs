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
use carbonx_gateway::daylog::Cursor;
use carbonx_gateway::soup::{self, LoginRequest, Packet, SESSION_LEN};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

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

impl Default for TcpFeedConfig {
    fn default() -> Self {
        TcpFeedConfig {
            backlog_max: BACKLOG_MAX,
            heartbeat: Duration::from_secs(1),
            login_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
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

async fn login(socket: &mut TcpStream, buf: &mut Vec<u8>, timeout: Duration) -> Result<LoginRequest, String> {
    let read = async {
        loop {
            if let Some((packet, used)) = soup::next_packet(buf).map_err(|e| e.to_string())? {
                let Packet::LoginRequest(login) = packet else {
                    return Err("the first packet was not a Login Request".to_string());
                };
                buf.drain(..used);
                return Ok(login);
            }
            let mut chunk = [0u8; 256];
            let n = socket.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before login".to_string());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| "no login in time".to_string())?
}

async fn send(socket: &mut TcpStream, packet: Packet<'_>) -> Result<(), String> {
    let mut out = Vec::with_capacity(64);
    packet.encode(&mut out);
    socket.write_all(&out).await.map_err(|e| e.to_string())
}

async fn snapshot(mut socket: TcpStream, shared: &FeedShared, config: TcpFeedConfig) -> Result<(), String> {
    let mut buf = Vec::new();
    login(&mut socket, &mut buf, config.login_timeout).await?;
    let (session, messages, next) = {
        let state = shared.state.lock();
        let next = state.log.as_ref().map_or(1, |l| l.next_seq());
        (state.session, state.book.snapshot(state.last_ns), next)
    };
    send(&mut socket, Packet::LoginAccepted { session, sequence: 1 }).await?;
    let mut out = Vec::with_capacity(messages.len() * 40 + 64);
    let mut encoded = [0u8; crate::itch::MESSAGE_LEN_MAX];
    for message in messages.iter().chain([&Message::EndOfSnapshot(EndOfSnapshot { sequence: next })]) {
        let len = message.encode(&mut encoded);
        Packet::Sequenced(&encoded[..len]).encode(&mut out);
    }
    Packet::EndOfSession.encode(&mut out);
    socket.write_all(&out).await.map_err(|e| e.to_string())?;
    let _ = socket.shutdown().await;
    Ok(())
}

async fn stream(
    mut socket: TcpStream,
    shared: &FeedShared,
    config: TcpFeedConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let _ = socket.set_nodelay(true);
    let mut buf = Vec::new();
    let login = login(&mut socket, &mut buf, config.login_timeout).await?;
    let mut live = shared.next_seq.subscribe();
    let Some((session, mut cursor)) = start_cursor(shared, &login)? else {
        send(&mut socket, Packet::LoginRejected(b'S')).await?;
        return Err("session not available".into());
    };
    send(&mut socket, Packet::LoginAccepted { session, sequence: cursor.seq }).await?;
    let peer = socket.peer_addr().map_err(|e| e.to_string())?;
    let listed = shared.register(peer);
    let mut out = Vec::with_capacity(WRITE_CHUNK);
    let mut idle_deadline = tokio::time::Instant::now() + config.idle_timeout;
    loop {
        listed.consumer.sent.store(cursor.offset, std::sync::atomic::Ordering::Relaxed);
        let ended = fill(shared, &session, &mut cursor, &mut out, config.backlog_max)?;
        if !out.is_empty() {
            write_watching_backlog(&mut socket, &out, shared, &cursor, &mut live, config.backlog_max).await?;
            continue;
        }
        if ended {
            send(&mut socket, Packet::EndOfSession).await?;
            return Ok(());
        }
        let mut chunk = [0u8; 512];
        tokio::select! {
            _ = live.changed() => {}
            _ = tokio::time::sleep(config.heartbeat) => send(&mut socket, Packet::ServerHeartbeat).await?,
            read = socket.read(&mut chunk) => {
                let n = read.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
                if consumer_packets(&mut buf)? {
                    return Ok(());
                }
                idle_deadline = tokio::time::Instant::now() + config.idle_timeout;
            }
            _ = tokio::time::sleep_until(idle_deadline) => return Err("nothing received within the idle timeout".into()),
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Copies the next packets for a consumer into `out`; true when its session ended.
fn fill(
    shared: &FeedShared,
    session: &[u8; SESSION_LEN],
    cursor: &mut Cursor,
    out: &mut Vec<u8>,
    backlog_max: u64,
) -> Result<bool, String> {
    out.clear();
    let state = shared.state.lock();
    if &state.session != session {
        return Ok(true);
    }
    let Some(log) = state.log.as_ref() else { return Ok(true) };
    let backlog = log.end().offset - cursor.offset;
    if backlog > backlog_max {
        return Err(format!("backlog of {backlog} bytes passed the cap of {backlog_max}"));
    }
    log.read(cursor, WRITE_CHUNK, out).map_err(|e| e.to_string())?;
    Ok(false)
}

/// Handles what a consumer sent; true on logout.
fn consumer_packets(buf: &mut Vec<u8>) -> Result<bool, String> {
    let mut used = 0;
    while let Some((packet, len)) = soup::next_packet(&buf[used..]).map_err(|e| e.to_string())? {
        used += len;
        match packet {
            Packet::LogoutRequest => return Ok(true),
            Packet::ClientHeartbeat | Packet::Debug(_) => {}
            _ => return Err("unexpected packet from a feed consumer".into()),
        }
    }
    buf.drain(..used);
    Ok(false)
}

/// Where a consumer's login starts it; `None` when the session is not available.
fn start_cursor(shared: &FeedShared, login: &LoginRequest) -> Result<Option<([u8; SESSION_LEN], Cursor)>, String> {
    let state = shared.state.lock();
    let wrong = login.session != [b' '; SESSION_LEN] && login.session != state.session;
    let Some(log) = state.log.as_ref().filter(|_| !wrong) else {
        return Ok(None);
    };
    let cursor = if login.sequence == 0 { log.end() } else { log.seek(login.sequence).map_err(|e| e.to_string())? };
    Ok(Some((state.session, cursor)))
}

/// Writes `out`; while the consumer is not reading, keeps checking how far
/// the live feed has run ahead of it and gives up past the cap, so a stuck
/// consumer is cut off instead of holding its connection forever.
async fn write_watching_backlog(
    socket: &mut TcpStream,
    out: &[u8],
    shared: &FeedShared,
    cursor: &Cursor,
    live: &mut watch::Receiver<([u8; SESSION_LEN], u64)>,
    backlog_max: u64,
) -> Result<(), String> {
    let write = socket.write_all(out);
    tokio::pin!(write);
    loop {
        tokio::select! {
            written = &mut write => return written.map_err(|e| e.to_string()),
            changed = live.changed() => {
                if changed.is_err() {
                    return Err("the feed stopped".into());
                }
                let end = shared.state.lock().log.as_ref().map_or(0, |l| l.end().offset);
                let backlog = (end + out.len() as u64).saturating_sub(cursor.offset);
                if backlog > backlog_max {
                    return Err(format!("backlog of {backlog} bytes passed the cap of {backlog_max}"));
                }
            }
        }
    }
}
