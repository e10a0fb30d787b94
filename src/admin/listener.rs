//! How the admin endpoint takes its connections: at most
//! `[admin] connections_max` at once and `per_address_max` from one source
//! address (more are answered `503` and closed), TLS where configured, the
//! handshake and each request's head within `header_timeout_ms` (also the
//! longest a kept-alive connection waits idle), heads of at most
//! `header_bytes_max` (`431` past it), bodies of at most
//! [`BODY_MAX`](crate::admin::BODY_MAX) (`413`), and no connection older
//! than `connection_timeout_ms`, whatever it sends.
//!
//! The endpoint has its own runtime (one thread, `carbonx-admin`; see
//! `crate::serve::server`), so a flood of order entry never delays the
//! kill switch, and a flood of admin connections never delays order entry.

use crate::admin::AdminState;
use axum::Router;
use carbonx_soup::capped::{Capped, PerAddress};
use carbonx_soup::server::next_connection;
use carbonx_soup::stream::Accept;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// The endpoint's limits (`[admin]`, checked by
/// [`AdminConfig::limits`](crate::config::AdminConfig::limits)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections at once, every address together.
    pub connections_max: usize,
    /// Connections at once from one source address.
    pub per_address_max: usize,
    /// The TLS handshake, each request head, and idle keep-alive.
    pub header_timeout: Duration,
    /// The longest a connection lives.
    pub connection_timeout: Duration,
    /// The largest request head in bytes.
    pub header_bytes_max: usize,
}

/// Refusals being written at once at most; past it a refused connection
/// is closed without an answer (a flood cannot make the refusals a load).
const REFUSALS_AT_ONCE: usize = 64;
/// How long a refusal or a graceful close may take.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The answer to a connection over a cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
content-length: 43\r\n\
connection: close\r\n\r\n\
{\"error\":\"too many admin connections open\"}";

/// Serves the endpoint on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    accept: Accept,
    limits: Limits,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = crate::admin::router(state);
    let open = Arc::new(Semaphore::new(limits.connections_max));
    let per_address: Arc<PerAddress> = Capped::new(limits.per_address_max);
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    loop {
        let Some((socket, peer)) = next_connection(&listener, &mut shutdown, "admin endpoint").await else {
            break;
        };
        let (Some(place), Ok(permit)) = (per_address.admit(peer.ip()), Arc::clone(&open).try_acquire_owned()) else {
            tracing::warn!(%peer, ?limits, "admin connection refused: at the connection cap");
            if let Ok(turn) = Arc::clone(&refusals).try_acquire_owned() {
                tokio::spawn(async move {
                    refuse_busy(socket).await;
                    drop(turn);
                });
            }
            continue;
        };
        let (app, accept, shutdown) = (app.clone(), accept.clone(), shutdown.clone());
        tokio::spawn(async move {
            connection(socket, peer, &accept, limits, app, shutdown).await;
            drop((place, permit));
        });
    }
}

/// Answers `503` and closes, reading what the client sent meanwhile so the
/// close does not reset the connection before the answer is read.
async fn refuse_busy(mut socket: TcpStream) {
    let answer = async {
        socket.write_all(BUSY).await?;
        socket.shutdown().await?;
        let mut sink = [0u8; 1024];
        while socket.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, answer).await;
}

/// One connection: the handshake, then HTTP/1.1 under the limits.
async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    accept: &Accept,
    limits: Limits,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let stream = match accept.accept(socket, limits.header_timeout).await {
        Ok(stream) => stream,
        Err(err) => return tracing::info!(%peer, %err, "admin TLS handshake failed; closed"),
    };
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(limits.header_bytes_max);
    let served = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    let lifetime = tokio::time::sleep(limits.connection_timeout);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%peer, %err, "admin connection ended");
            }
        }
        () = lifetime => tracing::info!(%peer, "admin connection closed: older than connection_timeout_ms"),
        _ = shutdown.changed() => {
            served.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(CLOSE_WAIT, served).await;
        }
    }
}
