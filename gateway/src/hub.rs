//! The sessions' shared state: one sequenced stream per username per
//! trading day, fed by the router thread and read by each user's
//! connection. The router appends a whole batch per user under a short
//! lock and wakes the user's writer; it never touches a socket, so a slow
//! client can never slow the engine or other users.

use crate::config::{Directory, GatewayConfig, GatewayConfigError};
use crate::intake::Throttle;
use crate::replies::Replies;
use bytes::{Bytes, BytesMut};
use carbonx_engine::calendar::Calendar;
use carbonx_engine::{EngineConfig, Event, StockCode, Timestamp, UserId};
use carbonx_soup::daylog::{Cursor, DayLog};
use carbonx_soup::failstop::{FailStop, PanicHook};
use carbonx_soup::files::FileModes;
use carbonx_soup::packet::{self as soup, Packet, SESSION_LEN};
use crossbeam::channel::Receiver;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// What the router thread receives from the sequencer.
#[derive(Debug)]
pub enum StageInput {
    /// Durable events, each with its command's timestamp, in stream order.
    Events(Vec<(Timestamp, Event)>),
    /// A trading day (`YYYYMMDD`) starts: new session names, streams from 1.
    Day(u32),
    /// Answered once everything before it is in the day logs: start-up
    /// waits for it so that no client logs in to a half-rebuilt stream.
    Barrier(crossbeam::channel::Sender<()>),
}

/// One user's stream state.
#[derive(Debug, Default)]
pub struct Stream {
    /// Today's session name (blank before the first day).
    pub session: [u8; SESSION_LEN],
    /// Today's messages.
    pub log: Option<DayLog>,
    /// The day before, kept so that a connected client still receives its
    /// last messages before End of Session.
    pub previous: Option<([u8; SESSION_LEN], DayLog)>,
}

impl Stream {
    /// The log of `session`: today's or the previous day's.
    pub fn log_of(&self, session: &[u8; SESSION_LEN]) -> Option<&DayLog> {
        match &self.previous {
            _ if &self.session == session => self.log.as_ref(),
            Some((name, log)) if name == session => Some(log),
            _ => None,
        }
    }
}

/// One username's slot.
#[derive(Debug)]
pub struct UserSlot {
    /// The stream, locked briefly by the router and the writer.
    pub stream: Mutex<Stream>,
    /// Wakes the user's writer when messages were appended (one writer per
    /// user, so `notify_one` keeps a wake-up that arrives before it waits).
    pub wake: Notify,
    /// True while a connection is logged in as this user.
    pub connected: AtomicBool,
    /// The user's throttle, kept across reconnections.
    pub throttle: Mutex<Throttle>,
    /// The operator's disconnect: wakes the connection logged in as this user.
    pub kick: Notify,
}

/// One username's session as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The username.
    pub name: String,
    /// True while a connection is logged in.
    pub connected: bool,
    /// The sequence number the next message of today's stream will carry.
    pub next_seq: u64,
    /// True for a drop-copy desk.
    pub drop_copy: bool,
}

/// All sessions.
#[derive(Debug)]
pub struct Hub {
    /// Users and accounts.
    pub directory: Directory,
    /// The gateway's settings.
    pub config: GatewayConfig,
    /// One slot per user (index = user id), then one per drop-copy desk.
    pub slots: Vec<UserSlot>,
    /// Per user: the slots of the desks that receive a copy of its stream.
    copies: Vec<Vec<usize>>,
    /// Messages in and out, rejects.
    pub counters: crate::counters::Counters,
    stocks: Vec<StockCode>,
    calendar: Calendar,
    sessions_dir: PathBuf,
    file_modes: FileModes,
    /// The server's fail-stop switch: thrown here when a day log cannot be
    /// created or written; once thrown, no login is accepted.
    failstop: Arc<FailStop>,
    /// False on a cluster node that is not the leader: logins are refused
    /// (`S`) and the order-entry sessions closed ([`Hub::set_serving`]).
    serving: AtomicBool,
}

impl Hub {
    /// A hub for `config`'s users on `market`; day logs go under
    /// `sessions_dir/YYYYMMDD/`, created with `file_modes`.
    ///
    /// # Errors
    /// The users do not resolve against the market's accounts.
    pub fn new(
        config: GatewayConfig,
        market: &EngineConfig,
        stocks: Vec<StockCode>,
        account_codes: Vec<[u8; 4]>,
        sessions_dir: PathBuf,
        file_modes: FileModes,
    ) -> Result<Hub, GatewayConfigError> {
        let directory = Directory::new(&config, account_codes)?;
        let throttles = directory.users.iter().map(|u| Throttle::new(u.rate_per_sec, u.burst));
        // A desk never sends orders: its throttle is never used.
        let desk_throttles = directory.desks.iter().map(|_| Throttle::new(1, 1));
        let slots = throttles
            .chain(desk_throttles)
            .map(|throttle| UserSlot {
                stream: Mutex::new(Stream::default()),
                wake: Notify::new(),
                connected: AtomicBool::new(false),
                throttle: Mutex::new(throttle),
                kick: Notify::new(),
            })
            .collect();
        let mut copies = vec![Vec::new(); directory.users.len()];
        for desk in &directory.desks {
            for user in &desk.users {
                copies[usize::from(user.get())].push(usize::from(desk.slot.get()));
            }
        }
        let calendar = Calendar::new(market);
        Ok(Hub {
            directory,
            config,
            slots,
            copies,
            counters: crate::counters::Counters::default(),
            stocks,
            calendar,
            sessions_dir,
            file_modes,
            failstop: FailStop::new(),
            serving: AtomicBool::new(true),
        })
    }

    /// Whether this node takes order-entry logins: always on a single
    /// node; on a cluster node only while it leads. Turning it off ends
    /// every connected session at once (cancel-on-disconnect does not
    /// apply: the node can no longer sequence anything); the brokers log
    /// in to the new leader with their next sequence number.
    pub fn set_serving(&self, serving: bool) {
        if !self.serving.swap(serving, Ordering::AcqRel) || serving {
            return;
        }
        for slot in &self.slots[..self.directory.users.len()] {
            if slot.connected.load(Ordering::Acquire) {
                slot.kick.notify_waiters();
            }
        }
    }

    /// Whether logins are taken ([`Hub::set_serving`]).
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// The server's fail-stop switch (one per hub; the other stages share it).
    pub fn failstop(&self) -> &Arc<FailStop> {
        &self.failstop
    }

    /// The slot of `user`.
    pub fn slot(&self, user: UserId) -> &UserSlot {
        &self.slots[usize::from(user.get())]
    }

    /// Claims the user's session for one connection; false if taken.
    pub fn claim(&self, user: UserId) -> bool {
        self.slot(user).connected.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Releases a claim.
    pub fn release(&self, user: UserId) {
        self.slot(user).connected.store(false, Ordering::Release);
    }

    /// Every username's session, then every drop-copy desk's.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let users = self.directory.users.len();
        self.directory
            .stream_names()
            .zip(&self.slots)
            .enumerate()
            .map(|(n, (name, slot))| SessionInfo {
                name: String::from_utf8_lossy(name).trim().to_string(),
                connected: slot.connected.load(Ordering::Acquire),
                next_seq: slot.stream.lock().log.as_ref().map_or(1, DayLog::next_seq),
                drop_copy: n >= users,
            })
            .collect()
    }

    /// Ends the connection logged in as `user`; false when none is.
    pub fn disconnect(&self, user: UserId) -> bool {
        let slot = self.slot(user);
        if !slot.connected.load(Ordering::Acquire) {
            return false;
        }
        // Wakes only a connection already waiting: no permit is stored for
        // the next login.
        slot.kick.notify_waiters();
        true
    }

    /// The router thread: applies the sequencer's output until it stops.
    /// A day log that cannot be created or written stops it at once
    /// (fail-stop): numbering on past a message a client can never get
    /// would leave a hole in that session's stream.
    pub fn run_router(&self, input: &Receiver<StageInput>) {
        let _watch = self.failstop.watch("router");
        let mut hook = PanicHook::for_stage("router");
        let mut router = Router::new(self.slots.len(), self.stocks.clone());
        for message in input {
            let written = match message {
                StageInput::Events(batch) => {
                    hook.tick();
                    router.publish(self, &batch)
                }
                StageInput::Day(date) => {
                    router.day_started = false;
                    self.start_day(date)
                }
                StageInput::Barrier(reached) => {
                    let _ = reached.send(());
                    Ok(())
                }
            };
            if let Err(err) = written {
                self.failstop.trip(format_args!("session day log: {err}"));
                break;
            }
        }
        tracing::info!("order-entry router stopped");
    }

    /// Starts day `date`: every user and desk gets a new, empty stream.
    ///
    /// # Errors
    /// A day log could not be created (the error names it): the caller
    /// must stop, for that user's stream would miss the day's messages.
    pub fn start_day(&self, date: u32) -> std::io::Result<()> {
        let session = soup::session_name(date);
        let users = self.directory.users.len();
        for (n, (slot, name)) in self.slots.iter().zip(self.directory.stream_names()).enumerate() {
            let name = String::from_utf8_lossy(name).trim().to_string();
            let kind = if n < users { "ouch" } else { "dropcopy" };
            let path = self.sessions_dir.join(format!("{date:08}")).join(format!("{name}.{kind}"));
            let log = Some(DayLog::create(&path, self.file_modes)?);
            let mut stream = slot.stream.lock();
            let old = std::mem::replace(&mut stream.log, log);
            stream.previous = old.map(|l| (stream.session, l));
            stream.session = session;
            drop(stream);
            slot.wake.notify_one();
        }
        Ok(())
    }

    /// Where a client asking for `requested` (0 = only new) starts, and the
    /// current session; `None` before the first trading day.
    /// After a fail-stop, `None`: the exchange takes no new login.
    pub fn login_cursor(&self, user: UserId, requested: u64) -> Option<([u8; SESSION_LEN], Cursor)> {
        if self.failstop.is_tripped() {
            return None;
        }
        let stream = self.slot(user).stream.lock();
        let log = stream.log.as_ref()?;
        let cursor = if requested == 0 { Ok(log.end()) } else { log.seek(requested) };
        match cursor {
            Ok(cursor) => Some((stream.session, cursor)),
            Err(err) => {
                tracing::error!(path = %log.path().display(), %err, "cannot read a session day log");
                None
            }
        }
    }

    /// The current session name (blank before the first day).
    pub fn session(&self) -> [u8; SESSION_LEN] {
        self.slots.first().map_or([b' '; SESSION_LEN], |s| s.stream.lock().session)
    }
}

/// The router's scratch buffers, reused batch after batch. Each message is
/// framed once; its user's stream and every drop-copy desk that copies the
/// user share the one [`Bytes`] packet.
struct Router {
    packets: Vec<Vec<Bytes>>,
    touched: Vec<usize>,
    message: Vec<u8>,
    framed: BytesMut,
    day_started: bool,
    /// The directory as of the current day: an instrument listed at a roll
    /// (RULES §1.3) is learnt from the new day's references.
    stocks: Vec<StockCode>,
}

impl Router {
    fn new(users: usize, stocks: Vec<StockCode>) -> Router {
        Router {
            stocks,
            packets: vec![Vec::new(); users],
            touched: Vec::new(),
            message: Vec::with_capacity(crate::ouch::MESSAGE_LEN_MAX),
            framed: BytesMut::with_capacity(64 * 1024),
            day_started: false,
        }
    }

    /// Numbers one batch into the users' streams and wakes their writers.
    /// A message is numbered (and can reach its client) only once its
    /// bytes are in its day log.
    ///
    /// # Errors
    /// A day log could not be written: the caller must stop (the error
    /// names the file); nothing of the failed write is visible to readers.
    fn publish(&mut self, hub: &Hub, batch: &[(Timestamp, Event)]) -> std::io::Result<()> {
        for (_, event) in batch {
            if let Event::Reference(r) = event {
                learn_stock(&mut self.stocks, r.instrument.index(), r.stock);
            }
        }
        let replies = Replies { directory: &hub.directory, stocks: &self.stocks };
        for (ts, event) in batch {
            let ns = hub.calendar.nanos_since_midnight(*ts);
            replies.translate(event, ns, &mut self.day_started, &mut |user, outbound| {
                let n = usize::from(user.get());
                if n >= hub.copies.len() {
                    return;
                }
                self.message.clear();
                outbound.encode_into(&mut self.message);
                if let Some(&kind) = self.message.first() {
                    hub.counters.messages_out.count(kind);
                    if kind == b'J' {
                        // Rejected: type, timestamp 8, token 14, reason.
                        hub.counters.rejects.count(self.message.get(23).copied().unwrap_or(b'?'));
                    }
                }
                Packet::Sequenced(&self.message).encode(&mut self.framed);
                let packet = self.framed.split().freeze();
                for &stream in std::iter::once(&n).chain(&hub.copies[n]) {
                    if self.packets[stream].is_empty() {
                        self.touched.push(stream);
                    }
                    self.packets[stream].push(packet.clone());
                }
            });
        }
        let mut outcome = Ok(());
        for n in self.touched.drain(..) {
            let slot = &hub.slots[n];
            let mut stream = slot.stream.lock();
            if outcome.is_ok() {
                match stream.log.as_mut().map(|log| log.append_shared(&self.packets[n])) {
                    Some(Ok(())) => {}
                    Some(Err(err)) => outcome = Err(err),
                    None => tracing::error!(user = n, "messages before the first trading day were dropped"),
                }
            }
            drop(stream);
            slot.wake.notify_one();
            self.packets[n].clear();
        }
        outcome
    }
}

/// Records `stock` as the code of directory index `index` (a listing joins
/// the directory last, so the index is at most one past the end).
fn learn_stock(stocks: &mut Vec<StockCode>, index: usize, stock: StockCode) {
    let known = stocks.len();
    if index < known {
        stocks[index] = stock;
    } else if index == known {
        stocks.push(stock);
    } else {
        tracing::error!(index, %stock, "a reference for an instrument beyond the directory");
    }
}
