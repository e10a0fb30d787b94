//! The MoldUDP64 re-request server: a client that missed datagrams sends
//! the 20-byte header (session, first sequence wanted, count) here and gets
//! back, unicast, as many of those messages as fit one datagram.
//!
//! A 20-byte request returns up to 1,400 bytes to whatever source address
//! it claims, so the server would amplify a spoofed flood. Hence:
//! - answers to one source address are limited to a configured number of
//!   bytes per second ([`Limiter`], a token bucket per address);
//! - only today's session is served, and only numbers already published;
//! - answers are read from the day log's file by this thread's own
//!   [`LogReader`] (with its own sparse index), never under the feed's
//!   mutex, so requests cannot slow the feed thread down.
//!
//! Requests for another session, for numbers not yet sent, over the limit,
//! or that are not 20 bytes are dropped (debug log line, counted).

use crate::moldudp::{DATAGRAM_MAX, PackError, Packer, ReRequest, SESSION_LEN};
use crate::service::FeedShared;
use rustc_hash::FxHashMap;
use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the server checks its stop flag while idle.
const POLL: Duration = Duration::from_millis(100);
/// Default answer bytes per second to one source address.
pub const BYTES_PER_SECOND: u64 = 64 * 1024;
/// Source addresses tracked at most; past it, addresses with a full bucket
/// are forgotten, and new ones wait until there is room.
const SOURCES_MAX: usize = 65_536;
/// One index entry per this many packets of the day log.
const STRIDE: u64 = 64;
/// Bytes read from the file at once while indexing.
const SCAN_CHUNK: usize = 64 * 1024;

/// A token bucket of answer bytes per source address.
#[derive(Debug)]
pub struct Limiter {
    rate: u64,
    burst: f64,
    buckets: FxHashMap<IpAddr, (f64, Instant)>,
}

impl Limiter {
    /// `rate` bytes per second per source, with a burst of one second's
    /// worth (one full datagram at least).
    pub fn new(rate: u64) -> Limiter {
        Limiter { rate, burst: rate.max(DATAGRAM_MAX as u64) as f64, buckets: FxHashMap::default() }
    }

    /// True when `from` may be sent a full datagram at `now`; then
    /// [`Limiter::charge`] takes what was actually sent.
    pub fn admit(&mut self, from: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&from) && !self.make_room(now) {
            return false;
        }
        let (rate, burst) = (self.rate as f64, self.burst);
        let (tokens, last) = self.buckets.entry(from).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        *tokens >= DATAGRAM_MAX as f64
    }

    /// Takes `bytes` from `from`'s bucket.
    pub fn charge(&mut self, from: IpAddr, bytes: usize) {
        if let Some((tokens, _)) = self.buckets.get_mut(&from) {
            *tokens -= bytes as f64;
        }
    }

    /// Forgets sources whose bucket has refilled when the table is full;
    /// false when it is still full.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.buckets.len() < SOURCES_MAX {
            return true;
        }
        let (rate, burst) = (self.rate as f64, self.burst);
        self.buckets
            .retain(|_, (tokens, last)| *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst);
        self.buckets.len() < SOURCES_MAX
    }
}

/// Today's day log read from its file, with this reader's own index: the
/// re-request server never takes the feed's mutex to answer.
#[derive(Debug)]
pub struct LogReader {
    session: [u8; SESSION_LEN],
    file: File,
    /// Offset of packet `1 + k * STRIDE` at `index[k]`.
    index: Vec<u64>,
    /// The first packet not yet scanned, and its offset.
    scanned: (u64, u64),
}

impl LogReader {
    /// Reads `path`, the day log of `session`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(session: [u8; SESSION_LEN], path: &std::path::Path) -> std::io::Result<LogReader> {
        Ok(LogReader { session, file: File::open(path)?, index: vec![0], scanned: (1, 0) })
    }

    /// The session it reads.
    pub fn session(&self) -> [u8; SESSION_LEN] {
        self.session
    }

    /// Offset of packet `seq`, which must be below `published` (the
    /// feed's next number: everything before it is in the file).
    fn offset_of(&mut self, seq: u64, published: u64) -> std::io::Result<u64> {
        self.scan_to(seq.min(published), published)?;
        let k = (seq - 1) / STRIDE;
        let mut offset = self.index[k as usize];
        let mut header = [0u8; 2];
        for _ in 0..(seq - 1) % STRIDE {
            self.file.read_exact_at(&mut header, offset)?;
            offset += 2 + u64::from(u16::from_be_bytes(header));
        }
        Ok(offset)
    }

    /// Indexes the file up to packet `seq` (never past `published`).
    fn scan_to(&mut self, seq: u64, published: u64) -> std::io::Result<()> {
        if self.scanned.0 > seq || self.scanned.0 >= published {
            return Ok(());
        }
        let mut chunk = vec![0u8; SCAN_CHUNK];
        while self.scanned.0 <= seq && self.scanned.0 < published {
            let (mut next, start) = self.scanned;
            let read = self.file.read_at(&mut chunk, start)?;
            if read < 2 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let mut at = 0usize;
            while next < published && at + 2 <= read {
                let len = 2 + usize::from(u16::from_be_bytes([chunk[at], chunk[at + 1]]));
                if at + len > read && at > 0 {
                    break; // the rest of this packet in the next chunk
                }
                if (next - 1) % STRIDE == 0 && (next - 1) / STRIDE == self.index.len() as u64 {
                    self.index.push(start + at as u64);
                }
                (next, at) = (next + 1, at + len);
            }
            self.scanned = (next, start + at as u64);
        }
        Ok(())
    }

    /// Up to `max` bytes of packets from `seq` on (whole packets, before
    /// `published` only).
    fn read_from(&mut self, seq: u64, published: u64, max: usize) -> std::io::Result<Vec<u8>> {
        let offset = self.offset_of(seq, published)?;
        let mut bytes = vec![0u8; max];
        let read = self.file.read_at(&mut bytes, offset)?;
        bytes.truncate(read);
        Ok(bytes)
    }
}

/// Serves re-requests on `socket` until `stop` is set, at most
/// `bytes_per_second` of answers to each source address.
pub fn serve(socket: &UdpSocket, shared: &Arc<FeedShared>, stop: &AtomicBool, bytes_per_second: u64) {
    let counters = &shared.counters;
    let _ = socket.set_read_timeout(Some(POLL));
    let mut request = [0u8; 64];
    let mut limiter = Limiter::new(bytes_per_second);
    let mut reader: Option<LogReader> = None;
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = socket.recv_from(&mut request) else { continue };
        let Ok(wanted) = ReRequest::decode(&request[..len]) else {
            tracing::debug!(%from, len, "malformed re-request dropped");
            counters.rerequests_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if !limiter.admit(from.ip(), Instant::now()) {
            counters.rerequests_limited.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match answer(shared, &mut reader, &wanted) {
            Some(datagram) => {
                limiter.charge(from.ip(), datagram.len());
                counters.rerequests_answered.fetch_add(1, Ordering::Relaxed);
                reply(socket, from, &datagram);
            }
            None => {
                counters.rerequests_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn reply(socket: &UdpSocket, to: SocketAddr, datagram: &[u8]) {
    if let Err(err) = socket.send_to(datagram, to) {
        tracing::debug!(%to, %err, "re-request answer not sent");
    }
}

/// Today's day log's path, asked once per trading day (the only time
/// this server takes the feed's mutex).
fn todays_log(shared: &FeedShared) -> Option<([u8; SESSION_LEN], PathBuf)> {
    let state = shared.state.lock();
    Some((state.session, state.log.as_ref()?.path().to_path_buf()))
}

/// The datagram answering `wanted`, or `None` when it must be dropped:
/// another session than today's, nothing asked, or numbers not yet sent.
pub fn answer(shared: &FeedShared, reader: &mut Option<LogReader>, wanted: &ReRequest) -> Option<Vec<u8>> {
    let (today, published) = *shared.next_seq.borrow();
    if wanted.session != today || wanted.sequence == 0 || wanted.sequence >= published || wanted.count == 0 {
        return None;
    }
    if reader.as_ref().is_none_or(|r| r.session() != today) {
        let (session, path) = todays_log(shared).filter(|(session, _)| *session == today)?;
        *reader = LogReader::open(session, &path).ok();
    }
    let bytes = reader.as_mut()?.read_from(wanted.sequence, published, DATAGRAM_MAX).ok()?;
    Some(pack(wanted, &bytes, published))
}

/// The messages of the stored packets in `bytes`, from `wanted.sequence`
/// on, as many as fit one datagram and were asked for.
fn pack(wanted: &ReRequest, bytes: &[u8], published: u64) -> Vec<u8> {
    let mut packer = Packer::new(wanted.session, wanted.sequence);
    let mut rest = bytes;
    let mut count = 0u64;
    let most = u64::from(wanted.count).min(published - wanted.sequence);
    // Each stored packet is `u16 length`, `S`, message.
    while let Some((&[hi, lo], body)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(message) = body.get(1..len) else { break };
        if count == most || matches!(packer.push(message), Err(PackError::Full | PackError::TooLarge(_))) {
            break;
        }
        count += 1;
        rest = &body[len..];
    }
    packer.datagram().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_gets_its_rate_and_no_more() {
        let mut limiter = Limiter::new(14_000);
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        let start = Instant::now();
        let mut sent = 0;
        while limiter.admit(a, start) {
            limiter.charge(a, DATAGRAM_MAX);
            sent += 1;
            assert!(sent <= 10, "the burst is one second's worth");
        }
        assert_eq!(sent, 10);
        // Another source is not affected; a tenth of a second refills one datagram.
        assert!(limiter.admit(b, start));
        assert!(limiter.admit(a, start + Duration::from_millis(100)));
        limiter.charge(a, DATAGRAM_MAX);
        assert!(!limiter.admit(a, start + Duration::from_millis(100)));
    }

    #[test]
    fn a_rate_below_one_datagram_still_answers_once_per_refill() {
        let mut limiter = Limiter::new(700);
        let (a, now): (IpAddr, _) = ([10, 0, 0, 1].into(), Instant::now());
        assert!(limiter.admit(a, now));
        limiter.charge(a, DATAGRAM_MAX);
        assert!(!limiter.admit(a, now + Duration::from_secs(1)));
        assert!(limiter.admit(a, now + Duration::from_secs(2)));
    }

    #[test]
    fn the_reader_finds_every_packet_without_the_feed_lock() {
        use carbonx_soup::daylog::DayLog;
        use carbonx_soup::packet::Packet;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("itch.log");
        let mut log = DayLog::create(&path, carbonx_soup::files::FileModes::default()).unwrap();
        let total = 5_000u64;
        let mut packets = Vec::new();
        for n in 1..=total {
            let body = format!("m{n}:{}", "x".repeat((n % 37) as usize));
            Packet::Sequenced(body.as_bytes()).encode(&mut packets);
        }
        log.append(&packets, total).unwrap();
        let mut reader = LogReader::open(*b"CX20260105", &path).unwrap();
        for seq in [1, 2, 63, 64, 65, 129, 4_999, 5_000, 1_000, 3] {
            let bytes = reader.read_from(seq, total + 1, 64).unwrap();
            let want = format!("m{seq}:");
            assert_eq!(&bytes[3..3 + want.len()], want.as_bytes(), "packet {seq}");
        }
    }
}

#[cfg(test)]
mod without_the_feed_mutex {
    use super::*;
    use crate::service::FeedState;
    use carbonx_soup::daylog::DayLog;
    use carbonx_soup::packet::Packet;

    /// A feed whose day `CX20260105` has `count` messages logged.
    fn feed(dir: &std::path::Path, count: u64) -> Arc<FeedShared> {
        let shared = FeedShared::new();
        let mut log = DayLog::create(&dir.join("itch.log"), carbonx_soup::files::FileModes::default()).unwrap();
        let mut packets = Vec::new();
        for n in 1..=count {
            Packet::Sequenced(format!("S-message-{n}").as_bytes()).encode(&mut packets);
        }
        log.append(&packets, count).unwrap();
        let session = *b"CX20260105";
        *shared.state.lock() = FeedState { session, log: Some(log), ..FeedState::default() };
        shared.next_seq.send_replace((session, count + 1));
        shared
    }

    #[test]
    fn answers_while_the_feed_thread_holds_its_mutex() {
        let dir = tempfile::tempdir().unwrap();
        let shared = feed(dir.path(), 500);
        let mut reader = None;
        let first = ReRequest { session: *b"CX20260105", sequence: 1, count: 1 };
        assert!(answer(&shared, &mut reader, &first).is_some(), "today's log is found");
        // The feed thread is busy with a batch: its mutex is held.
        let held = shared.state.lock();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let asker = Arc::clone(&shared);
        std::thread::spawn(move || {
            let wanted = ReRequest { session: *b"CX20260105", sequence: 300, count: 10 };
            let _ = done_tx.send(answer(&asker, &mut reader, &wanted));
        });
        let datagram = done_rx.recv_timeout(Duration::from_secs(30)).expect("the answer waited for the feed's mutex");
        drop(held);
        let datagram = datagram.expect("answered");
        let decoded = crate::moldudp::Datagram::decode(&datagram).unwrap();
        assert_eq!((decoded.header().sequence, decoded.header().message_count()), (300, 10));
        assert_eq!(decoded.messages().next().unwrap(), b"S-message-300");
    }

    #[test]
    fn other_sessions_zero_and_unsent_numbers_get_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let shared = feed(dir.path(), 20);
        let mut reader = None;
        for (session, sequence, count) in
            [(*b"CX20260102", 1, 5), (*b"CX20260105", 0, 5), (*b"CX20260105", 21, 1), (*b"CX20260105", 3, 0)]
        {
            assert!(answer(&shared, &mut reader, &ReRequest { session, sequence, count }).is_none());
        }
        let last = answer(&shared, &mut reader, &ReRequest { session: *b"CX20260105", sequence: 18, count: 50 });
        let decoded = crate::moldudp::Datagram::decode(last.as_deref().unwrap()).unwrap();
        assert_eq!(decoded.header().message_count(), 3, "only what was published");
    }
}
