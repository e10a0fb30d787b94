//! The feed thread and what it shares with the feed's servers.
//!
//! The sequencer sends durable event batches; this thread translates them
//! to ITCH, numbers them (one sequence per trading day across all
//! instruments), appends them to the day log (SoupBinTCP Sequenced Data
//! packets, file-backed with a bounded tail: the same log the TCP feed and
//! the re-request server read), applies them to the server's own book (what
//! the snapshot service serves) and publishes them as MoldUDP64 datagrams.
//! It never waits for a consumer: TCP consumers read the log at their own
//! pace and are cut off past their backlog cap.

use crate::book::BookBuilder;
use crate::counters::send_all;
use crate::itch::Message;
use crate::moldudp::{PackError, Packer, SESSION_LEN};
use crate::translate::Translator;
use carbonx_engine::calendar::Calendar;
use carbonx_engine::{EngineConfig, Event, Phase, StockCode, Timestamp};
use carbonx_soup::daylog::DayLog;
use carbonx_soup::packet::Packet;
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A batch of events, each with its command's timestamp.
pub type EventBatch = Vec<(Timestamp, Event)>;

/// What the feed thread receives from the sequencer.
#[derive(Debug)]
pub enum FeedInput {
    /// Durable events in stream order.
    Batch(EventBatch),
    /// A trading day starts: sequence numbers restart at 1 under `session`.
    Day {
        /// `CX` + `YYYYMMDD`.
        session: [u8; SESSION_LEN],
    },
    /// Answered once everything before it is in the day log.
    Barrier(Sender<()>),
}

/// The day's feed state, shared with the TCP feed, snapshot and re-request servers.
#[derive(Debug, Default)]
pub struct FeedState {
    /// Today's session (blank before the first day).
    pub session: [u8; SESSION_LEN],
    /// Today's messages as SoupBinTCP Sequenced Data packets.
    pub log: Option<DayLog>,
    /// The book as the feed describes it, for snapshots.
    pub book: BookBuilder,
    /// The last message's timestamp (nanoseconds since local midnight).
    pub last_ns: u64,
}

/// Shared between the feed thread and the servers.
#[derive(Debug)]
pub struct FeedShared {
    /// The state, locked briefly per batch and per read.
    pub state: Mutex<FeedState>,
    /// The next sequence number, for consumers to wait on.
    pub next_seq: tokio::sync::watch::Sender<(/* session */ [u8; SESSION_LEN], u64)>,
    /// The TCP consumers connected now, for the operator's metrics.
    consumers: Mutex<Vec<Arc<Consumer>>>,
    /// Publisher and re-request counters, for the operator's metrics.
    pub counters: crate::counters::FeedCounters,
}

/// A connected TCP feed consumer: where it is and how far it has been sent.
#[derive(Debug)]
pub struct Consumer {
    /// Its address.
    pub peer: std::net::SocketAddr,
    /// The day-log offset up to which it has been sent.
    pub sent: std::sync::atomic::AtomicU64,
}

/// Removes a consumer from [`FeedShared`]'s list when its connection ends.
pub struct ConsumerGuard<'a> {
    shared: &'a FeedShared,
    /// The consumer.
    pub consumer: Arc<Consumer>,
}

impl Drop for ConsumerGuard<'_> {
    fn drop(&mut self) {
        self.shared.consumers.lock().retain(|c| !Arc::ptr_eq(c, &self.consumer));
    }
}

impl FeedShared {
    /// An empty feed.
    pub fn new() -> Arc<FeedShared> {
        let (next_seq, _) = tokio::sync::watch::channel(([b' '; SESSION_LEN], 1));
        Arc::new(FeedShared {
            state: Mutex::new(FeedState::default()),
            next_seq,
            consumers: Mutex::new(Vec::new()),
            counters: crate::counters::FeedCounters::default(),
        })
    }

    /// Lists a consumer until the guard is dropped.
    pub fn register(&self, peer: std::net::SocketAddr) -> ConsumerGuard<'_> {
        let consumer = Arc::new(Consumer { peer, sent: std::sync::atomic::AtomicU64::new(0) });
        self.consumers.lock().push(Arc::clone(&consumer));
        ConsumerGuard { shared: self, consumer }
    }

    /// The next feed sequence number of the day (the count published + 1).
    pub fn next_sequence(&self) -> u64 {
        self.next_seq.borrow().1
    }

    /// Each connected consumer with its unsent backlog in bytes.
    pub fn backlogs(&self) -> Vec<(std::net::SocketAddr, u64)> {
        let end = self.state.lock().log.as_ref().map_or(0, |l| l.end().offset);
        let consumers = self.consumers.lock();
        consumers
            .iter()
            .map(|c| (c.peer, end.saturating_sub(c.sent.load(std::sync::atomic::Ordering::Relaxed))))
            .collect()
    }
}

/// Where the feed publishes.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    /// MoldUDP64 destinations.
    pub destinations: Vec<SocketAddr>,
    /// A heartbeat goes out after this much silence.
    pub heartbeat: Duration,
    /// Day logs go under this folder.
    pub log_dir: PathBuf,
    /// The permissions of new day logs and their folder.
    pub file_modes: carbonx_soup::files::FileModes,
}

/// The feed thread.
pub struct FeedService {
    shared: Arc<FeedShared>,
    translator: Translator,
    calendar: Calendar,
    socket: UdpSocket,
    config: PublishConfig,
    packer: Packer,
    messages: Vec<Message>,
    packets: Vec<u8>,
    last_sent: Instant,
    /// The day's session has ended (end of session sent at the close).
    ended: bool,
}

impl FeedService {
    /// A feed for `market`'s instruments publishing from `socket`.
    pub fn new(
        shared: Arc<FeedShared>,
        market: &EngineConfig,
        stocks: &[StockCode],
        socket: UdpSocket,
        config: PublishConfig,
    ) -> FeedService {
        FeedService {
            shared,
            translator: Translator::new(stocks),
            calendar: Calendar::new(market),
            socket,
            config,
            packer: Packer::new([b' '; SESSION_LEN], 1),
            messages: Vec::with_capacity(1 << 12),
            packets: Vec::with_capacity(1 << 16),
            last_sent: Instant::now(),
            ended: true,
        }
    }

    /// Runs until the input closes.
    pub fn run(&mut self, input: &Receiver<FeedInput>) {
        loop {
            match input.recv_timeout(self.config.heartbeat) {
                Ok(FeedInput::Batch(batch)) => self.publish(&batch),
                Ok(FeedInput::Day { session }) => self.start_day(session),
                Ok(FeedInput::Barrier(reached)) => {
                    let _ = reached.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.last_sent.elapsed() >= self.config.heartbeat && !self.ended {
                let heartbeat = self.packer.heartbeat();
                self.send(&heartbeat);
            }
        }
        tracing::info!("feed stopped");
    }

    fn start_day(&mut self, session: [u8; SESSION_LEN]) {
        if !self.ended {
            self.end_session();
        }
        self.ended = false;
        let date = String::from_utf8_lossy(&session[2..]).to_string();
        let path = self.config.log_dir.join(format!("itch-{date}.log"));
        let log = DayLog::create(&path, self.config.file_modes)
            .map_err(|err| tracing::error!(path = %path.display(), %err, "cannot create the feed day log"))
            .ok();
        let mut state = self.shared.state.lock();
        *state = FeedState { session, log, book: BookBuilder::new(), last_ns: 0 };
        drop(state);
        self.packer = Packer::new(session, 1);
        self.shared.next_seq.send_replace((session, 1));
    }

    /// End of session, three times over a second (on a helper thread, so
    /// that the feed never sleeps). Sent after the close's last message.
    fn end_session(&mut self) {
        self.ended = true;
        let packet = self.packer.end_of_session();
        // The first now, before anything of the next day; the repeats later.
        self.send(&packet);
        let Ok(socket) = self.socket.try_clone() else { return };
        let (destinations, shared) = (self.config.destinations.clone(), Arc::clone(&self.shared));
        std::thread::spawn(move || {
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(450));
                send_all(&socket, &destinations, &packet, &shared.counters);
            }
        });
    }

    /// Translates, logs, books and publishes one batch.
    pub fn publish(&mut self, batch: &[(Timestamp, Event)]) {
        self.messages.clear();
        self.packets.clear();
        let mut last_ns = 0;
        for (ts, event) in batch {
            let ns = self.calendar.nanos_since_midnight(*ts);
            last_ns = ns;
            self.translator.translate(event, ns, &mut |m| self.messages.push(m));
        }
        if self.messages.is_empty() {
            return;
        }
        let mut encoded = [0u8; crate::itch::MESSAGE_LEN_MAX];
        for message in &self.messages {
            let len = message.encode(&mut encoded);
            Packet::Sequenced(&encoded[..len]).encode(&mut self.packets);
        }
        let next = {
            let mut state = self.shared.state.lock();
            let state = &mut *state;
            if let Some(log) = &mut state.log {
                if let Err(err) = log.append(&self.packets, self.messages.len() as u64) {
                    tracing::error!(%err, "feed day log write failed");
                }
            }
            for message in &self.messages {
                state.book.apply_unsequenced(message);
            }
            state.last_ns = last_ns;
            state.log.as_ref().map_or(1, DayLog::next_seq)
        };
        self.shared.next_seq.send_replace((self.packer.session(), next));
        self.pack_and_send();
        if batch.iter().any(|(_, e)| matches!(e, Event::Phase(Phase::Closed))) {
            self.end_session();
        }
    }

    fn pack_and_send(&mut self) {
        for i in 0..self.messages.len() {
            match self.packer.push_itch(&self.messages[i]) {
                Ok(_) => {}
                Err(PackError::Full) => {
                    self.flush();
                    let _ = self.packer.push_itch(&self.messages[i]);
                }
                Err(PackError::TooLarge(_)) => unreachable!("ITCH messages fit a datagram"),
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        if self.packer.is_empty() {
            return;
        }
        send_all(&self.socket, &self.config.destinations, self.packer.datagram(), &self.shared.counters);
        self.last_sent = Instant::now();
        self.packer.clear();
    }

    fn send(&mut self, datagram: &[u8]) {
        send_all(&self.socket, &self.config.destinations, datagram, &self.shared.counters);
        self.last_sent = Instant::now();
    }
}
