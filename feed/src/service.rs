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
use carbonx_soup::failstop::{FailStop, PanicHook};
use carbonx_soup::packet::Packet;
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Whether the events that follow come from entries this node
    /// sequenced itself (a single node, or a cluster's leader) and are
    /// sent as MoldUDP64, or are a cluster follower's copy, logged but not
    /// sent ([`FeedService::with_publishing`]).
    Own(bool),
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
    /// Thrown when the day log cannot be created or written (fail-stop).
    failstop: Arc<FailStop>,
    /// Whether the messages being published go out as MoldUDP64 ([`FeedInput::Own`]).
    own: bool,
    /// Whether heartbeats and end-of-session packets go out: always on a
    /// single node, on a cluster node while it leads.
    leading: Arc<AtomicBool>,
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
            failstop: FailStop::new(),
            own: true,
            leading: Arc::new(AtomicBool::new(true)),
        }
    }

    /// A cluster node's feed. Every node logs, numbers and books every
    /// message (their TCP feeds, snapshots and re-requests serve the same
    /// bytes), but a message goes out as MoldUDP64 only from the node whose
    /// leader sequenced its command ([`FeedInput::Own`], in the stream), so
    /// no number is ever sent by two nodes. After a failover the new leader
    /// goes on with the same session and numbers; what the old leader
    /// committed but never sent is re-requested like any lost datagram, and
    /// the new leader's first heartbeat (heartbeats go out while `leading`)
    /// tells consumers at once where the stream stands.
    #[must_use]
    pub fn with_publishing(mut self, own: bool, leading: Arc<AtomicBool>) -> FeedService {
        (self.own, self.leading) = (own, leading);
        self
    }

    fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Shares the server's fail-stop switch.
    #[must_use]
    pub fn with_failstop(mut self, failstop: Arc<FailStop>) -> FeedService {
        self.failstop = failstop;
        self
    }

    /// Runs until the input closes, or until the day log cannot be created
    /// or written: then it throws the fail-stop switch and stops at once,
    /// sending nothing more (not even a heartbeat announcing a number the
    /// log does not hold).
    pub fn run(&mut self, input: &Receiver<FeedInput>) {
        let _watch = self.failstop.watch("feed");
        let mut hook = PanicHook::for_stage("feed");
        loop {
            let logged = match input.recv_timeout(self.config.heartbeat) {
                Ok(FeedInput::Batch(batch)) => {
                    hook.tick();
                    self.publish(&batch)
                }
                Ok(FeedInput::Day { session }) => self.start_day(session),
                Ok(FeedInput::Barrier(reached)) => {
                    let _ = reached.send(());
                    Ok(())
                }
                Ok(FeedInput::Own(own)) => {
                    self.own = own;
                    Ok(())
                }
                Err(RecvTimeoutError::Timeout) => Ok(()),
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Err(err) = logged {
                self.failstop.trip(format_args!("feed day log: {err}"));
                break;
            }
            if self.last_sent.elapsed() >= self.config.heartbeat && !self.ended {
                let heartbeat = self.packer.heartbeat();
                self.send(&heartbeat);
            }
        }
        tracing::info!("feed stopped");
    }

    /// Starts the day's log and numbering.
    ///
    /// # Errors
    /// The day log could not be created (the error names it).
    pub fn start_day(&mut self, session: [u8; SESSION_LEN]) -> std::io::Result<()> {
        if !self.ended {
            self.end_session();
        }
        let date = String::from_utf8_lossy(&session[2..]).to_string();
        let path = self.config.log_dir.join(format!("itch-{date}.log"));
        let log = DayLog::create(&path, self.config.file_modes)?;
        self.ended = false;
        let mut state = self.shared.state.lock();
        *state = FeedState { session, log: Some(log), book: BookBuilder::new(), last_ns: 0 };
        drop(state);
        self.packer = Packer::new(session, 1);
        self.shared.next_seq.send_replace((session, 1));
        Ok(())
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
        let leading = Arc::clone(&self.leading);
        std::thread::spawn(move || {
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(450));
                if leading.load(Ordering::Acquire) {
                    send_all(&socket, &destinations, &packet, &shared.counters);
                }
            }
        });
    }

    /// Translates, logs, books and publishes one batch. The messages get
    /// their numbers from the day log when their bytes are in it; only
    /// then are they booked and sent, numbered from there.
    ///
    /// # Errors
    /// The day log could not be written, or there is none (no day
    /// started): nothing of the batch was sent or numbered.
    pub fn publish(&mut self, batch: &[(Timestamp, Event)]) -> std::io::Result<()> {
        self.messages.clear();
        self.packets.clear();
        let mut last_ns = 0;
        for (ts, event) in batch {
            let ns = self.calendar.nanos_since_midnight(*ts);
            last_ns = ns;
            self.translator.learn(event);
            self.translator.translate(event, ns, &mut |m| self.messages.push(m));
        }
        if self.messages.is_empty() {
            return Ok(());
        }
        let mut encoded = [0u8; crate::itch::MESSAGE_LEN_MAX];
        for message in &self.messages {
            let len = message.encode(&mut encoded);
            Packet::Sequenced(&encoded[..len]).encode(&mut self.packets);
        }
        let count = self.messages.len() as u64;
        let next = {
            let mut state = self.shared.state.lock();
            let state = &mut *state;
            let log = state.log.as_mut().ok_or_else(|| std::io::Error::other("no trading day has started"))?;
            log.append(&self.packets, count)?;
            let next = log.next_seq();
            for message in &self.messages {
                state.book.apply_unsequenced(message);
            }
            state.last_ns = last_ns;
            next
        };
        self.shared.next_seq.send_replace((self.packer.session(), next));
        let numbered = self.packer.number_from(next - count);
        debug_assert!(numbered, "the packer is flushed after every batch");
        self.pack_and_send();
        if batch.iter().any(|(_, e)| matches!(e, Event::Phase(Phase::Closed))) {
            self.end_session();
        }
        Ok(())
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
        if self.own {
            send_all(&self.socket, &self.config.destinations, self.packer.datagram(), &self.shared.counters);
            self.last_sent = Instant::now();
        }
        self.packer.clear();
    }

    /// Sends a heartbeat or end of session (a follower sends none, and its
    /// heartbeat timer keeps running: a new leader's first goes out at once).
    fn send(&mut self, datagram: &[u8]) {
        if self.is_leading() {
            send_all(&self.socket, &self.config.destinations, datagram, &self.shared.counters);
            self.last_sent = Instant::now();
        }
    }
}
