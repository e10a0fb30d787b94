//! The MoldUDP64 re-request server: a client that missed datagrams sends
//! the 20-byte header (session, first sequence wanted, count) here and gets
//! back, unicast, as many of those messages as fit one datagram, read from
//! the feed's day log. Requests for another session, for numbers not yet
//! sent, or that are not 20 bytes are dropped with a debug log line.

use crate::moldudp::{DATAGRAM_MAX, PackError, Packer, ReRequest};
use crate::service::FeedShared;
use bytes::BytesMut;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the server checks its stop flag while idle.
const POLL: Duration = Duration::from_millis(100);

/// Serves re-requests on `socket` until `stop` is set.
pub fn serve(socket: &UdpSocket, shared: &Arc<FeedShared>, stop: &AtomicBool) {
    let _ = socket.set_read_timeout(Some(POLL));
    let mut request = [0u8; 64];
    let mut scratch = BytesMut::with_capacity(DATAGRAM_MAX * 2);
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = socket.recv_from(&mut request) else { continue };
        let Ok(wanted) = ReRequest::decode(&request[..len]) else {
            tracing::debug!(%from, len, "malformed re-request dropped");
            continue;
        };
        if let Some(datagram) = answer(shared, &wanted, &mut scratch) {
            reply(socket, from, &datagram);
        }
    }
}

fn reply(socket: &UdpSocket, to: SocketAddr, datagram: &[u8]) {
    if let Err(err) = socket.send_to(datagram, to) {
        tracing::debug!(%to, %err, "re-request answer not sent");
    }
}

/// The datagram answering `wanted`, or `None` when it must be dropped.
pub fn answer(shared: &FeedShared, wanted: &ReRequest, scratch: &mut BytesMut) -> Option<Vec<u8>> {
    let state = shared.state.lock();
    let log = state.log.as_ref()?;
    if wanted.session != state.session || wanted.sequence == 0 || wanted.sequence >= log.next_seq() || wanted.count == 0
    {
        return None;
    }
    let mut cursor = log.seek(wanted.sequence).ok()?;
    scratch.clear();
    log.read(&mut cursor, DATAGRAM_MAX, scratch).ok()?;
    drop(state);
    let mut packer = Packer::new(wanted.session, wanted.sequence);
    let mut rest = &scratch[..];
    let mut count = 0;
    // Each stored packet is `u16 length`, `S`, message.
    while let Some((&[hi, lo], body)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(message) = body.get(1..len) else { break };
        if count == wanted.count || matches!(packer.push(message), Err(PackError::Full | PackError::TooLarge(_))) {
            break;
        }
        count += 1;
        rest = &body[len..];
    }
    Some(packer.datagram().to_vec())
}
