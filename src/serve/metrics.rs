//! Prometheus metrics, served as text at the admin endpoint's `/metrics`.
//!
//! What is measured where, and why there:
//! - the sequencer ([`SequencerMetrics`]): per group commit, the batch size,
//!   the `fdatasync` latency, the engine's apply time per command (the
//!   batch's apply time divided by its commands: one clock read per batch,
//!   not per command, so that measuring costs the engine nothing), and the
//!   queue depths it sees at each batch (commands in, replies and market
//!   data out). Histograms are observed once per batch, never per command;
//! - the gateway ([`carbonx_gateway::counters`]): messages in and out by
//!   OUCH type and rejects by reason, relaxed atomics read at scrape time,
//!   and the connected sessions. Label values are only the known type and
//!   reason letters (anything else a client sends counts as `other`): the
//!   text encoder does not escape label values;
//! - the feed: its next sequence number and each TCP consumer's backlog,
//!   read at scrape time.
//!
//! Counters end in `_total`; every name starts with `carbonx_`.

use carbonx_feed::counters::{FeedCounters, read};
use carbonx_feed::service::FeedShared;
use carbonx_gateway::counters::ByLetter;
use carbonx_gateway::hub::Hub;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// What the sequencer thread records.
#[derive(Debug, Clone)]
pub struct SequencerMetrics {
    /// Commands per group commit.
    pub batch_commands: Histogram,
    /// Seconds per `fdatasync` (one per group commit with `fsync = "batch"`).
    pub fdatasync_seconds: Histogram,
    /// Seconds of engine apply per command, per batch (batch time / commands).
    pub apply_seconds: Histogram,
    /// Commands journaled and applied.
    pub commands: Counter,
    /// A cluster leader's seconds from proposing a batch to applying it
    /// (replicated, durable on a majority, committed).
    pub commit_seconds: Histogram,
    /// Command batches waiting in the gateway → sequencer queue.
    pub command_queue: Gauge,
    /// Event batches waiting in the sequencer → order-entry router queue.
    pub order_entry_queue: Gauge,
    /// Event batches waiting in the sequencer → feed queue.
    pub feed_queue: Gauge,
}

impl Default for SequencerMetrics {
    fn default() -> Self {
        SequencerMetrics {
            batch_commands: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            fdatasync_seconds: Histogram::new(exponential_buckets(1e-5, 2.0, 16)),
            apply_seconds: Histogram::new(exponential_buckets(1e-8, 2.0, 16)),
            commands: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(1e-5, 2.0, 16)),
            command_queue: Gauge::default(),
            order_entry_queue: Gauge::default(),
            feed_queue: Gauge::default(),
        }
    }
}

/// A cluster node's Raft figures at a scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftFigures {
    /// The current term.
    pub term: u64,
    /// Whether this node leads and takes orders.
    pub leading: bool,
    /// The last entry in its log.
    pub last_log_index: u64,
    /// The last committed entry it knows of.
    pub commit_index: u64,
    /// The last entry its engine applied.
    pub applied_index: u64,
    /// The last entry of its current snapshot.
    pub snapshot_index: u64,
    /// The last entry purged from its log.
    pub purged_index: u64,
}

/// Reads a cluster node's [`RaftFigures`]; set once the node runs (a
/// single node never sets it, and exports none).
pub type RaftSource = Arc<std::sync::OnceLock<Box<dyn Fn() -> RaftFigures + Send + Sync>>>;

impl SequencerMetrics {
    /// `commands` applied in `took`: the apply time per command, and the count.
    pub fn applied(&self, commands: usize, took: std::time::Duration) {
        self.apply_seconds.observe(took.as_secs_f64() / commands.max(1) as f64);
        self.commands.inc_by(commands as u64);
    }
}

/// Every metric of a running server.
pub struct Metrics {
    registry: Registry,
    operator_queue: Gauge,
    /// The sequencer's share (give a clone to the sequencer).
    pub sequencer: SequencerMetrics,
    /// Where a cluster node's Raft figures come from.
    pub raft: RaftSource,
}

impl Metrics {
    /// The metrics of a server with `hub` (order entry) and, when it runs, `feed`.
    pub fn new(hub: Arc<Hub>, feed: Option<Arc<FeedShared>>) -> Metrics {
        let sequencer = SequencerMetrics::default();
        let mut registry = Registry::default();
        let s = &sequencer;
        registry.register("carbonx_journal_batch_commands", "Commands per group commit", s.batch_commands.clone());
        registry.register("carbonx_journal_fdatasync_seconds", "Latency of fdatasync", s.fdatasync_seconds.clone());
        registry.register(
            "carbonx_engine_apply_seconds",
            "Engine apply time per command, averaged over each batch",
            s.apply_seconds.clone(),
        );
        registry.register("carbonx_sequencer_commands", "Commands journaled and applied", s.commands.clone());
        registry.register(
            "carbonx_raft_commit_seconds",
            "A cluster leader's time from proposing a batch to applying it, committed",
            s.commit_seconds.clone(),
        );
        registry.register(
            "carbonx_queue_commands_depth",
            "Command batches queued for the sequencer",
            s.command_queue.clone(),
        );
        registry.register(
            "carbonx_queue_order_entry_depth",
            "Event batches queued for the order-entry router",
            s.order_entry_queue.clone(),
        );
        registry.register("carbonx_queue_feed_depth", "Event batches queued for the feed", s.feed_queue.clone());
        let operator_queue = Gauge::default();
        registry.register(
            "carbonx_queue_operator_depth",
            "Admin requests queued for the engine thread",
            operator_queue.clone(),
        );
        registry.register_collector(Box::new(GatewayCollector(hub)));
        if let Some(feed) = feed {
            registry.register_collector(Box::new(FeedCollector(feed)));
        }
        let raft = RaftSource::default();
        registry.register_collector(Box::new(RaftCollector(Arc::clone(&raft))));
        Metrics { registry, operator_queue, sequencer, raft }
    }

    /// The exposition (OpenMetrics text, which Prometheus reads), with
    /// `operator_queue` (admin requests waiting for the engine thread).
    pub fn render(&self, operator_queue: usize) -> String {
        self.operator_queue.set(i64::try_from(operator_queue).unwrap_or(i64::MAX));
        let mut text = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%err, "metrics encoding failed");
        }
        text
    }
}

/// Gateway counters and sessions, read at each scrape.
#[derive(Debug)]
struct GatewayCollector(Arc<Hub>);

impl Collector for GatewayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = &self.0.counters;
        by_letter(
            &mut encoder,
            "carbonx_gateway_messages_in",
            "Inbound OUCH messages by type",
            "type",
            &counters.messages_in,
        )?;
        by_letter(
            &mut encoder,
            "carbonx_gateway_messages_out",
            "Outbound OUCH messages by type",
            "type",
            &counters.messages_out,
        )?;
        by_letter(
            &mut encoder,
            "carbonx_gateway_rejects",
            "Rejected (J) messages by reason",
            "reason",
            &counters.rejects,
        )?;
        for (name, help, count) in [
            (
                "carbonx_gateway_login_failures",
                "Failed logins (wrong password, unknown user, locked out)",
                &counters.login_failures,
            ),
            (
                "carbonx_gateway_throttle_disconnects",
                "Connections closed for sending past their throttle",
                &counters.throttle_disconnects,
            ),
        ] {
            let counter = ConstCounter::new(count.load(std::sync::atomic::Ordering::Relaxed));
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let connected = self.0.sessions().iter().filter(|s| s.connected).count();
        let gauge = ConstGauge::new(i64::try_from(connected).unwrap_or(i64::MAX));
        gauge.encode(encoder.encode_descriptor(
            "carbonx_gateway_sessions_connected",
            "Order-entry sessions logged in",
            None,
            gauge.metric_type(),
        )?)
    }
}

fn by_letter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    counts: &ByLetter,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Counter)?;
    for (value, n) in counts.nonzero() {
        let labels = [(label, value.text())];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A cluster node's Raft figures, read at each scrape.
struct RaftCollector(RaftSource);

impl std::fmt::Debug for RaftCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaftCollector")
    }
}

impl Collector for RaftCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(read) = self.0.get() else { return Ok(()) };
        let f = read();
        for (name, help, value) in [
            ("carbonx_raft_term", "The current Raft term", f.term),
            ("carbonx_raft_leading", "1 while this node leads and takes orders, else 0", u64::from(f.leading)),
            ("carbonx_raft_last_log_index", "The last entry in this node's Raft log", f.last_log_index),
            ("carbonx_raft_commit_index", "The last committed entry this node knows of", f.commit_index),
            ("carbonx_raft_applied_index", "The last entry this node's engine applied", f.applied_index),
            ("carbonx_raft_snapshot_index", "The last entry of this node's current snapshot", f.snapshot_index),
            ("carbonx_raft_purged_index", "The last entry purged from this node's Raft log", f.purged_index),
        ] {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// The feed's sequence number and its TCP consumers' backlogs.
#[derive(Debug)]
struct FeedCollector(Arc<FeedShared>);

impl Collector for FeedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let next = ConstGauge::new(i64::try_from(self.0.next_sequence()).unwrap_or(i64::MAX));
        next.encode(encoder.encode_descriptor(
            "carbonx_feed_next_sequence",
            "The next ITCH sequence number of the day",
            None,
            next.metric_type(),
        )?)?;
        let mut family = encoder.encode_descriptor(
            "carbonx_feed_consumer_backlog_bytes",
            "Bytes of the TCP feed not yet sent to each consumer",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (peer, backlog) in self.0.backlogs() {
            let labels = [("consumer", peer.to_string())];
            ConstGauge::new(i64::try_from(backlog).unwrap_or(i64::MAX)).encode(family.encode_family(&labels)?)?;
        }
        udp_counters(&mut encoder, &self.0.counters)
    }
}

/// The MoldUDP64 publisher's failed sends and the re-request server's answers.
fn udp_counters(encoder: &mut DescriptorEncoder, counters: &FeedCounters) -> Result<(), std::fmt::Error> {
    let failures = ConstCounter::new(read(&counters.publish_failures));
    failures.encode(encoder.encode_descriptor(
        "carbonx_feed_publish_failures",
        "MoldUDP64 datagrams that could not be sent to a destination",
        None,
        failures.metric_type(),
    )?)?;
    let mut family = encoder.encode_descriptor(
        "carbonx_feed_rerequests",
        "MoldUDP64 re-requests by outcome (limited: over the source's byte rate)",
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (outcome, counter) in [
        ("answered", &counters.rerequests_answered),
        ("limited", &counters.rerequests_limited),
        ("dropped", &counters.rerequests_dropped),
    ] {
        ConstCounter::new(read(counter)).encode(family.encode_family(&[("outcome", outcome)])?)?;
    }
    let refused = ConstCounter::new(read(&counters.logins_refused));
    refused.encode(encoder.encode_descriptor(
        "carbonx_feed_logins_refused",
        "TCP feed and snapshot logins refused (unknown user, wrong password, or a connection cap)",
        None,
        refused.metric_type(),
    )?)?;
    let mut family = encoder.encode_descriptor(
        "carbonx_feed_connections",
        "TCP feed and snapshot consumers logged in now",
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (service, counter) in [("feed", &counters.tcp_connections), ("snapshot", &counters.snapshot_connections)] {
        let now = ConstGauge::new(i64::try_from(read(counter)).unwrap_or(i64::MAX));
        now.encode(family.encode_family(&[("service", service)])?)?;
    }
    Ok(())
}
