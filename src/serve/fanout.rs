//! The sequencer's publisher in a running server: each durable batch of
//! events goes, as one message, to the gateway (order-entry replies) and to
//! the feed (market data), over bounded channels; the start of each trading
//! day goes to both as its own message, in stream order.
//!
//! Why batches: one channel operation per batch rather than per event keeps
//! the engine thread's cost per command small. Why bounded: a stalled
//! stage pushes back on the sequencer instead of growing memory; external
//! clients are cut off by those stages long before that happens.

use crate::serve::eod::EodInput;
use crate::serve::sequencer::Publisher;
use carbonx_engine::{Engine, Event, Timestamp};
use carbonx_feed::service::FeedInput;
use carbonx_gateway::hub::StageInput;
use crossbeam::channel::Sender;

/// A batch of events, each with the timestamp of its command.
pub use carbonx_feed::service::EventBatch;

/// Which events a stage wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Order-entry replies: accepted, rejected, executed, cancelled, replaced, day phases.
    OrderEntry,
    /// Market data: book changes, executions, trading states, statistics,
    /// phases, auction results.
    MarketData,
    /// End-of-day files: executions, registry transfers and statistics.
    Settlement,
}

/// True when `event` concerns `audience`.
pub fn concerns(audience: Audience, event: &Event) -> bool {
    if audience == Audience::Settlement {
        return matches!(
            event,
            Event::Executed(_) | Event::DailyStats(_) | Event::Transferred { accepted: true, .. } | Event::Reference(_)
        );
    }
    match event {
        Event::Accepted(_) | Event::Rejected { .. } | Event::Replaced { .. } => audience == Audience::OrderEntry,
        Event::Cancelled { .. } | Event::CancelRejected { .. } => audience == Audience::OrderEntry,
        Event::BookAdd { .. } | Event::BookReduce { .. } | Event::BookDelete { .. } | Event::BookReplace { .. } => {
            audience == Audience::MarketData
        }
        Event::TradingState { .. } | Event::DailyStats(_) => audience == Audience::MarketData,
        // Every stage learns the day's directory from it (an instrument
        // listed at the roll included, RULES §1.3).
        Event::Executed(_) | Event::Phase(_) | Event::Reference(_) => true,
        Event::AuctionResult(_) => audience == Audience::MarketData,
        // Operator outcomes: for the admin endpoint, not for either stage.
        Event::Transferred { .. } | Event::AuctionAnnounced(_) | Event::AuctionRefused { .. } => false,
        Event::ReferenceData { .. } => false,
    }
}

/// A stage's input channel.
pub trait Sink: Send {
    /// Sends a batch; false when the stage has stopped.
    fn events(&self, batch: EventBatch) -> bool;
    /// Announces a new trading day; false when the stage has stopped.
    fn day(&self, date: u32) -> bool;
    /// Messages waiting in the stage's queue.
    fn depth(&self) -> usize;
    /// The trading day ended with `engine` in its final state; false when
    /// the stage has stopped. Most stages need nothing from it.
    fn day_ended(&self, _engine: &Engine) -> bool {
        true
    }
    /// The events that follow come from entries this node sequenced
    /// (`true`) or from a cluster leader's (`false`); false when the stage
    /// has stopped. Only the feed cares: it sends only its own.
    fn own(&self, _own: bool) -> bool {
        true
    }
}

impl Sink for Sender<EodInput> {
    fn events(&self, batch: EventBatch) -> bool {
        self.send(EodInput::Events(batch)).is_ok()
    }
    fn day(&self, date: u32) -> bool {
        self.send(EodInput::Day(date)).is_ok()
    }
    fn depth(&self) -> usize {
        self.len()
    }
    fn day_ended(&self, engine: &Engine) -> bool {
        let Some(accounts) = engine.accounts() else { return true };
        self.send(EodInput::DayEnded(Box::new(accounts.clone()))).is_ok()
    }
}

impl Sink for Sender<StageInput> {
    fn events(&self, batch: EventBatch) -> bool {
        self.send(StageInput::Events(batch)).is_ok()
    }
    fn day(&self, date: u32) -> bool {
        self.send(StageInput::Day(date)).is_ok()
    }
    fn depth(&self) -> usize {
        self.len()
    }
}

impl Sink for Sender<FeedInput> {
    fn events(&self, batch: EventBatch) -> bool {
        self.send(FeedInput::Batch(batch)).is_ok()
    }
    fn day(&self, date: u32) -> bool {
        self.send(FeedInput::Day { session: carbonx_soup::packet::session_name(date) }).is_ok()
    }
    fn depth(&self) -> usize {
        self.len()
    }
    fn own(&self, own: bool) -> bool {
        self.send(FeedInput::Own(own)).is_ok()
    }
}

/// Events the settlement stage (end-of-day files) collects before a
/// hand-off: its files need no hurry, and every hand-off wakes its thread,
/// which on a busy 2-core machine costs a context switch per batch.
pub const SETTLEMENT_BATCH: usize = 4_096;

/// One destination stage.
struct Stage {
    audience: Audience,
    sink: Box<dyn Sink>,
    pending: EventBatch,
    /// How many of the newest `pending` events belong to the batch whose
    /// journal sync may still be running: never handed over until
    /// [`Publisher::flush`] says it is durable, and dropped if it never is.
    unsynced: usize,
    /// Hand the pending events over once there are this many (or at a day
    /// boundary); 0: after every sequencer batch.
    hand_over_at: usize,
}

/// Routes events to the stages that want them, one batch per sequencer batch.
pub struct Fanout {
    stages: Vec<Stage>,
    /// What the stages were last told of the events' origin
    /// ([`Publisher::sequenced_here`]); `None` before the first.
    own: Option<bool>,
}

impl Fanout {
    /// A fan-out to no stage yet.
    pub fn new() -> Fanout {
        Fanout { stages: Vec::new(), own: None }
    }

    /// Adds a stage receiving the events of `audience`: after every
    /// sequencer batch, except the settlement stage, which gets them in
    /// batches of [`SETTLEMENT_BATCH`] and at every day boundary.
    pub fn with(mut self, audience: Audience, sink: impl Sink + 'static) -> Fanout {
        let hand_over_at = if audience == Audience::Settlement { SETTLEMENT_BATCH } else { 0 };
        self.stages.push(Stage { audience, sink: Box::new(sink), pending: Vec::new(), unsynced: 0, hand_over_at });
        self
    }

    /// Everything published so far is durable: the batch's sync finished
    /// (or, at a day's start or end, the batch was synced before it was
    /// applied).
    fn all_durable(&mut self) {
        self.stages.iter_mut().for_each(|stage| stage.unsynced = 0);
    }

    /// Hands pending events over to the stages `which` names: only durable
    /// ones (the caller marks them so first).
    fn hand_over(&mut self, which: HandOver) {
        for stage in &mut self.stages {
            debug_assert_eq!(stage.unsynced, 0, "handing over events whose journal sync is not done");
            let due = which == HandOver::All || stage.pending.len() >= stage.hand_over_at;
            if stage.pending.is_empty() || !due {
                continue;
            }
            let batch = std::mem::take(&mut stage.pending);
            if !stage.sink.events(batch) {
                tracing::error!(audience = ?stage.audience, "stage stopped; its events are dropped");
            }
        }
    }
}

/// Which stages get their pending events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandOver {
    /// Every stage (a day boundary, a stop).
    All,
    /// Those whose batch is due (the end of a sequencer batch).
    Due,
}

impl Drop for Fanout {
    /// A stopping server hands over what a lazy stage still holds, but
    /// only what is durable: when the sequencer stops because a batch's
    /// journal sync failed, or unwinds from a panic while applying one,
    /// that batch's events were never flushed, and they are dropped here
    /// (fail-stop: nothing leaves unless its journal bytes are durable).
    fn drop(&mut self) {
        for stage in &mut self.stages {
            let durable = stage.pending.len() - stage.unsynced;
            stage.pending.truncate(durable);
            stage.unsynced = 0;
        }
        self.hand_over(HandOver::All);
    }
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout::new()
    }
}

impl Publisher for Fanout {
    fn publish(&mut self, now: Timestamp, events: &[Event]) {
        for stage in &mut self.stages {
            let audience = stage.audience;
            let before = stage.pending.len();
            stage.pending.extend(events.iter().filter(|e| concerns(audience, e)).map(|e| (now, *e)));
            stage.unsynced += stage.pending.len() - before;
        }
    }

    fn flush(&mut self) {
        self.all_durable();
        self.hand_over(HandOver::Due);
    }

    fn queue_depths(&self) -> (usize, usize) {
        let depth = |audience| self.stages.iter().filter(|s| s.audience == audience).map(|s| s.sink.depth()).sum();
        (depth(Audience::OrderEntry), depth(Audience::MarketData))
    }

    fn day_ended(&mut self, engine: &Engine) {
        // A batch that ends or starts a day is synced before it is applied.
        self.all_durable();
        self.hand_over(HandOver::All);
        for stage in &self.stages {
            if !stage.sink.day_ended(engine) {
                tracing::error!(audience = ?stage.audience, "stage stopped; the day end is dropped");
            }
        }
    }

    fn sequenced_here(&mut self, own: bool) {
        if self.own == Some(own) {
            return;
        }
        self.own = Some(own);
        // Everything before the switch is flushed (it comes between two
        // batches): hand the lazy stages' part over, then the marker.
        self.hand_over(HandOver::All);
        for stage in &self.stages {
            if !stage.sink.own(own) {
                tracing::error!(audience = ?stage.audience, "stage stopped; the switch is dropped");
            }
        }
    }

    fn new_day(&mut self, date: u32) {
        self.all_durable();
        self.hand_over(HandOver::All);
        for stage in &self.stages {
            if !stage.sink.day(date) {
                tracing::error!(audience = ?stage.audience, "stage stopped; the day start is dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::eod::EodInput;
    use carbonx_engine::{Phase, Qty, Token, UserId};

    #[test]
    fn each_stage_gets_its_events_once_per_flush_and_days_in_order() {
        let (orders_tx, orders_rx) = crossbeam::channel::bounded::<StageInput>(8);
        let (feed_tx, feed_rx) = crossbeam::channel::bounded::<StageInput>(8);
        let mut fanout = Fanout::new().with(Audience::OrderEntry, orders_tx).with(Audience::MarketData, feed_tx);
        let token = Token::from_text("t").unwrap();
        let cancel_reject = Event::CancelRejected { user: UserId::new(1), token };
        let book = Event::BookReduce {
            instrument: carbonx_engine::InstrumentId::new(0),
            id: carbonx_engine::OrderId::new(1),
            cancelled: Qty::new(1),
        };
        let ts = Timestamp::from_nanos(5);
        fanout.publish(ts, &[cancel_reject, book]);
        fanout.new_day(20_261_125);
        fanout.publish(ts, &[Event::Phase(Phase::AllDay)]);
        fanout.flush();
        fanout.flush(); // nothing pending: nothing sent
        let orders: Vec<String> = orders_rx.try_iter().map(|m| format!("{m:?}")).collect();
        let expected_orders = [
            format!("{:?}", StageInput::Events(vec![(ts, cancel_reject)])),
            format!("{:?}", StageInput::Day(20_261_125)),
            format!("{:?}", StageInput::Events(vec![(ts, Event::Phase(Phase::AllDay))])),
        ];
        assert_eq!(orders, expected_orders);
        let feed: Vec<String> = feed_rx.try_iter().map(|m| format!("{m:?}")).collect();
        assert_eq!(feed.len(), 3, "{feed:?}");
        assert!(feed[0].contains("BookReduce") && !feed[0].contains("CancelRejected"), "{feed:?}");
    }

    #[test]
    fn the_settlement_stage_gets_full_batches_day_boundaries_and_the_rest_at_the_end() {
        let (eod_tx, eod_rx) = crossbeam::channel::unbounded::<EodInput>();
        let mut fanout = Fanout::new().with(Audience::Settlement, eod_tx);
        let stats = |n: usize| {
            let (instrument, price) = (carbonx_engine::InstrumentId::new(0), carbonx_engine::Price::MIN);
            let (open, high, low, close) = (price, price, price, price);
            let method = carbonx_engine::Method::Listing;
            let stats = carbonx_engine::DailyStats {
                method,
                instrument,
                open,
                high,
                low,
                close,
                volume: 0,
                turnover: 0,
                trades: 0,
            };
            vec![Event::DailyStats(stats); n]
        };
        let ts = Timestamp::from_nanos(1);
        let sizes = |rx: &crossbeam::channel::Receiver<EodInput>| -> Vec<String> {
            rx.try_iter()
                .map(|m| match m {
                    EodInput::Events(batch) => batch.len().to_string(),
                    EodInput::Day(date) => format!("day {date}"),
                    EodInput::DayEnded(_) => "ended".into(),
                })
                .collect()
        };
        fanout.publish(ts, &stats(SETTLEMENT_BATCH - 1));
        fanout.flush();
        assert!(sizes(&eod_rx).is_empty(), "not due yet");
        fanout.publish(ts, &stats(2));
        fanout.flush();
        assert_eq!(sizes(&eod_rx), [(SETTLEMENT_BATCH + 1).to_string()]);
        fanout.publish(ts, &stats(3));
        fanout.flush();
        fanout.new_day(20_261_126);
        assert_eq!(sizes(&eod_rx), ["3", "day 20261126"], "a day boundary hands over first");
        fanout.publish(ts, &stats(5));
        fanout.flush();
        drop(fanout);
        assert_eq!(sizes(&eod_rx), ["5"], "nothing is lost when the server stops");
    }

    #[test]
    fn a_batch_never_flushed_is_dropped_not_handed_over_when_the_sequencer_stops() {
        let (orders_tx, orders_rx) = crossbeam::channel::bounded::<StageInput>(8);
        let mut fanout = Fanout::new().with(Audience::OrderEntry, orders_tx);
        let ts = Timestamp::from_nanos(1);
        let token = Token::from_text("t").unwrap();
        let durable = Event::CancelRejected { user: UserId::new(1), token };
        let unsynced = Event::CancelRejected { user: UserId::new(2), token };
        fanout.publish(ts, &[durable, Event::Phase(Phase::AllDay)]);
        fanout.flush();
        // The next batch's sync fails (or applying it panics): no flush.
        fanout.publish(ts, &[unsynced, Event::Phase(Phase::Closed)]);
        drop(fanout);
        let orders: Vec<String> = orders_rx.try_iter().map(|m| format!("{m:?}")).collect();
        assert_eq!(orders.len(), 1, "only the flushed batch went out: {orders:?}");
        assert!(orders[0].contains("AllDay") && !orders[0].contains("Closed"), "{orders:?}");
    }
}
