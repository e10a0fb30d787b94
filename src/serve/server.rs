//! `carbonx serve`: the threads of a running exchange, wired together.
//!
//! ```text
//! tokio (gateway) --Vec<Command>--> sequencer thread (journal, engine) --StageInput--> router thread --> day logs --> tokio writers
//!                                                                     \--FeedInput----> feed thread
//! ```
//! Start-up replays the journal first (rebuilding every session's stream),
//! starts the trading day if none has started, and only then opens the
//! listeners. [`Server::shutdown`] stops the listeners, lets the sequencer
//! drain what was queued, and returns it so that tests can compare state.

use crate::admin::{AdminState, OPERATOR_QUEUE_MAX};
use crate::cluster::node::{ClusterError, ClusterNode, OnLeadership};
use crate::config::{Config, ConfigFileError};
use crate::serve::eod::{EodInput, EodWriter};
use crate::serve::fanout::{Audience, Fanout};
use crate::serve::journal_file::FsyncMode;
use crate::serve::metrics::Metrics;
use crate::serve::sequencer::{OperatorRequest, Replica, Sequencer, SequencerError, SystemClock};
use carbonx_engine::{AccountId, Command};
use carbonx_feed::service::{FeedInput, FeedService, FeedShared, PublishConfig};
use carbonx_feed::tcp::{Service, TcpFeedConfig};
use carbonx_gateway::config::GatewayConfigError;
use carbonx_gateway::hub::{Hub, StageInput};
use carbonx_gateway::server::Gateway;
use carbonx_soup::failstop::FailStop;
use carbonx_soup::stream::Accept;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// Command batches queued for the sequencer at most (each up to
/// [`carbonx_gateway::server::COMMANDS_PER_SEND_MAX`] commands).
pub const COMMAND_QUEUE_MAX: usize = 1_024;
/// Event batches queued for each stage at most.
pub const STAGE_QUEUE_MAX: usize = 1_024;

/// How to run.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Journal and day logs.
    pub data_dir: PathBuf,
    /// Journal durability.
    pub fsync: FsyncMode,
    /// Folder that relative paths in the configuration are resolved against.
    pub config_dir: PathBuf,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration or accounts file.
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    /// The gateway's users do not resolve.
    #[error("gateway: {0}")]
    Gateway(#[from] GatewayConfigError),
    /// The journal could not be replayed or written.
    #[error(transparent)]
    Sequencer(#[from] SequencerError),
    /// A socket or thread could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being set up.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A listener's TLS certificate or key could not be loaded.
    #[error("TLS of the {what}: {source}")]
    Tls {
        /// Which listener.
        what: &'static str,
        /// Why.
        source: carbonx_soup::stream::TlsError,
    },
    /// The cluster node could not start.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The engine thread is no longer running.
    #[error("the engine thread has stopped")]
    Stopped,
    /// The engine thread panicked: a bug.
    #[error("the sequencer thread panicked")]
    Panicked,
    /// A stage threw the fail-stop switch (a file that could not be
    /// written or synced, or a stage that panicked): the exchange stopped.
    #[error("FAIL-STOP: {0}")]
    FailStop(String),
}

/// A running server.
pub struct Server {
    order_entry: SocketAddr,
    runtime: tokio::runtime::Runtime,
    shutdown: watch::Sender<bool>,
    gateway: Option<Arc<Gateway>>,
    operator: crossbeam::channel::Sender<Vec<Command>>,
    /// Requests read between two batches on the engine thread ([`Server::settle_feed`]).
    requests: crossbeam::channel::Sender<OperatorRequest>,
    sequencer: JoinHandle<Result<Sequencer<Fanout>, SequencerError>>,
    router: JoinHandle<()>,
    eod: JoinHandle<()>,
    feed: Option<FeedThreads>,
    /// The admin endpoint (when it runs).
    admin: Option<AdminEndpoint>,
    drop_copy: Option<SocketAddr>,
    replayed: u64,
    failstop: Arc<FailStop>,
    /// The Raft node, with `[cluster]`.
    cluster: Option<Arc<ClusterNode>>,
}

/// The market-data side of a running server.
struct FeedThreads {
    input: crossbeam::channel::Sender<FeedInput>,
    shared: Arc<FeedShared>,
    service: JoinHandle<()>,
    rerequest: JoinHandle<()>,
    rerequest_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    tcp_addr: Option<SocketAddr>,
    snapshot_addr: Option<SocketAddr>,
}

impl FeedThreads {
    /// Starts the feed thread (publishing MoldUDP64) and the re-request server.
    fn start(
        config: &Config,
        engine: &carbonx_engine::Engine,
        data_dir: &Path,
        failstop: Arc<FailStop>,
        leading: Arc<AtomicBool>,
    ) -> Result<FeedThreads, ServeError> {
        let shared = FeedShared::new();
        let socket = publisher_socket(&config.feed).map_err(io("MoldUDP64 publisher socket"))?;
        let publish = PublishConfig {
            destinations: config.feed.publish_to.clone(),
            heartbeat: Duration::from_millis(config.gateway.heartbeat_ms),
            log_dir: data_dir.join("feed"),
            file_modes: config.data.file_modes(),
        };
        let mut service = FeedService::new(Arc::clone(&shared), &config.market, engine.instruments(), socket, publish)
            .with_failstop(failstop)
            .with_publishing(config.cluster.is_none(), leading);
        let (input, input_rx) = crossbeam::channel::bounded::<FeedInput>(STAGE_QUEUE_MAX);
        let service = std::thread::Builder::new()
            .name("carbonx-feed".into())
            .spawn(move || service.run(&input_rx))
            .map_err(io("feed thread"))?;
        let rerequest_socket = UdpSocket::bind(config.feed.rerequest)
            .map_err(io(format!("MoldUDP64 re-request on {}", config.feed.rerequest)))?;
        let rerequest_addr = rerequest_socket.local_addr().map_err(io("re-request socket"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, feed_state, rate) = (Arc::clone(&stop), Arc::clone(&shared), config.feed.rerequest_bytes_per_second);
        let rerequest = std::thread::Builder::new()
            .name("carbonx-rerequest".into())
            .spawn(move || carbonx_feed::rerequest::serve(&rerequest_socket, &feed_state, &flag, rate))
            .map_err(io("re-request thread"))?;
        Ok(FeedThreads { input, shared, service, rerequest, rerequest_addr, stop, tcp_addr: None, snapshot_addr: None })
    }

    /// Waits until the feed thread has logged everything published so far.
    fn wait_for_feed(&self, failstop: &FailStop) {
        let (reached_tx, reached_rx) = crossbeam::channel::bounded(1);
        if self.input.send(FeedInput::Barrier(reached_tx)).is_ok() {
            wait_for_barrier(&reached_rx, failstop);
        }
    }

    /// Opens the TCP feed and snapshot listeners, each plain or under TLS.
    fn listen(
        mut self,
        config: &Config,
        [feed_tls, snapshot_tls]: [Accept; 2],
        runtime: &tokio::runtime::Runtime,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<FeedThreads, ServeError> {
        let tcp_config = TcpFeedConfig {
            backlog_max: config.feed.backlog_max_bytes,
            heartbeat: Duration::from_millis(config.gateway.heartbeat_ms),
            login_timeout: Duration::from_millis(config.gateway.login_timeout_ms),
            idle_timeout: Duration::from_millis(config.gateway.idle_timeout_ms),
            write_timeout: Duration::from_millis(config.feed.write_timeout_ms),
            per_user_max: config.feed.connections_per_user_max,
            prelogin_per_address_max: config.feed.prelogin_per_address_max,
            snapshot_bytes_per_second: config.feed.snapshot_bytes_per_second,
        };
        let logins =
            Arc::new(config.feed.logins().map_err(|message| {
                ServeError::Config(ConfigFileError::Feed { path: "configuration".into(), message })
            })?);
        if logins.is_open() {
            tracing::warn!(
                "TCP feed and snapshot logins accept any username and password (demo market: no [[feed.users]])"
            );
        }
        let listeners =
            [(config.feed.tcp, Service::Feed, feed_tls), (config.feed.snapshot, Service::Snapshot, snapshot_tls)];
        for (addr, service, accept) in listeners {
            let listener = {
                let _guard = runtime.enter();
                feed_listener(addr).map_err(io(format!("{service:?} on {addr}")))?
            };
            let bound = listener.local_addr().map_err(io("feed listener"))?;
            runtime.spawn(carbonx_feed::tcp::serve(
                listener,
                accept,
                service,
                Arc::clone(&self.shared),
                tcp_config,
                Arc::clone(&logins),
                shutdown.clone(),
            ));
            match service {
                Service::Feed => self.tcp_addr = Some(bound),
                Service::Snapshot => self.snapshot_addr = Some(bound),
            }
        }
        Ok(self)
    }

    /// Stops the re-request server and waits for both threads (the feed
    /// thread ends when the sequencer's fan-out, its input, is dropped).
    fn join(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.input);
        let _ = self.rerequest.join();
        let _ = self.service.join();
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

impl Server {
    /// Recovers from the data directory, starts every thread, opens the listeners.
    ///
    /// # Errors
    /// A bad configuration, a corrupt journal, or a port that cannot be bound.
    pub fn start(config: &Config, options: &ServeOptions) -> Result<Server, ServeError> {
        let tls = ListenerTls::load(config, &options.config_dir)?;
        let engine = config.build_engine(&options.config_dir)?;
        let codes = account_codes(&engine);
        let sessions = options.data_dir.join("sessions");
        let (modes, stocks) = (config.data.file_modes(), engine.instruments().to_vec());
        let hub = Arc::new(Hub::new(config.gateway.clone(), &config.market, stocks.clone(), codes, sessions, modes)?);
        let (stage_tx, stage_rx) = crossbeam::channel::bounded::<StageInput>(STAGE_QUEUE_MAX);
        let router = start_router(&hub, stage_rx)?;
        let failstop = Arc::clone(hub.failstop());
        let barrier_tx = stage_tx.clone();
        let mut fanout = Fanout::new().with(Audience::OrderEntry, stage_tx);
        // MoldUDP64 goes out from a single node, or from a cluster's leader.
        let leading = Arc::new(AtomicBool::new(config.cluster.is_none()));
        let feed = start_feed(config, &engine, &options.data_dir, &failstop, &leading)?;
        if let Some(feed) = &feed {
            fanout = fanout.with(Audience::MarketData, feed.input.clone());
        }
        let (eod_tx, eod) = start_eod(&engine, &options.data_dir, modes, Arc::clone(&failstop))?;
        fanout = fanout.with(Audience::Settlement, eod_tx);
        let metrics = Arc::new(Metrics::new(Arc::clone(&hub), feed.as_ref().map(|f| Arc::clone(&f.shared))));
        let sequencer = Sequencer::new(engine, fanout, Some(options.data_dir.clone()), options.fsync)
            .with_batching(config.journal.batching())
            .with_metrics(metrics.sequencer.clone())
            .with_file_modes(modes)
            .with_failstop(Arc::clone(&failstop));
        let Recovered { sequencer, replayed, cluster } = recover_or_join(config, options, sequencer, &hub, &leading)?;
        if let Some(node) = &cluster {
            let _ = metrics.raft.set(Box::new(node.figures()));
        }
        wait_for_stages(&barrier_tx, feed.as_ref(), &failstop)?;
        let (command_tx, command_rx) = crossbeam::channel::bounded::<Vec<Command>>(COMMAND_QUEUE_MAX);
        let (operator_tx, operator_rx) = crossbeam::channel::bounded::<OperatorRequest>(OPERATOR_QUEUE_MAX);
        let sequencer = spawn_sequencer(sequencer, command_rx, operator_rx)?;
        let runtime = runtime(2, "carbonx-io")?;
        let (listener, order_entry) = bind(&runtime, config.gateway.listen, "order entry")?;
        let operator = command_tx.clone();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = AdminState::new(config.admin.token.clone(), operator_tx.clone(), Arc::clone(&hub), stocks, metrics);
        let admin = start_admin(config, tls.admin, state, cluster.as_ref(), &shutdown_rx)?;
        let gateway = Gateway::new(hub, command_tx).map_err(io("gateway fair queue thread"))?;
        runtime.spawn(Arc::clone(&gateway).serve(listener, tls.order_entry, shutdown_rx.clone()));
        let drop_copy = start_drop_copy(config, &gateway, tls.drop_copy, &runtime, &shutdown_rx)?;
        let feed =
            feed.map(|feed| feed.listen(config, [tls.feed, tls.snapshot], &runtime, &shutdown_rx)).transpose()?;
        admin.iter().for_each(|admin| admin.ready.store(true, std::sync::atomic::Ordering::Release));
        tracing::info!(%order_entry, replayed, "carbonx serving");
        Ok(Server {
            order_entry,
            runtime,
            shutdown,
            gateway: Some(gateway),
            operator,
            requests: operator_tx,
            sequencer,
            router,
            eod,
            feed,
            admin,
            drop_copy,
            replayed,
            failstop,
            cluster,
        })
    }

    /// The admin endpoint's address (when it runs).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|admin| admin.addr)
    }

    /// The drop-copy address (when desks are configured).
    pub fn drop_copy_addr(&self) -> Option<SocketAddr> {
        self.drop_copy
    }

    /// The order-entry address actually bound (port 0 in config picks a free one).
    pub fn order_entry_addr(&self) -> SocketAddr {
        self.order_entry
    }

    /// The TCP feed's address (when the feed runs).
    pub fn tcp_feed_addr(&self) -> Option<SocketAddr> {
        self.feed.as_ref().and_then(|f| f.tcp_addr)
    }

    /// The snapshot service's address (when the feed runs).
    pub fn snapshot_addr(&self) -> Option<SocketAddr> {
        self.feed.as_ref().and_then(|f| f.snapshot_addr)
    }

    /// The MoldUDP64 re-request server's address (when the feed runs).
    pub fn rerequest_addr(&self) -> Option<SocketAddr> {
        self.feed.as_ref().map(|f| f.rerequest_addr)
    }

    /// Journal records replayed at start-up.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// Queues operator commands (roll, halt, kill switch...) into the one
    /// sequenced stream: they are journaled and applied like orders.
    ///
    /// # Errors
    /// The engine thread has stopped.
    pub fn submit(&self, commands: Vec<Command>) -> Result<(), ServeError> {
        self.operator.send(commands).map_err(|_| ServeError::Stopped)
    }

    /// Waits until the feed has logged every event the engine applied
    /// before this call (a round trip through the engine thread, then a
    /// barrier through the feed's queue): the next feed sequence number
    /// then, or `None` without a feed or once stopped. Tests wait for this
    /// number instead of for a quiet period, which depends on the
    /// machine's speed.
    pub fn settle_feed(&self) -> Option<u64> {
        let feed = self.feed.as_ref()?;
        let (applied_tx, applied_rx) = crossbeam::channel::bounded(1);
        let inspect = OperatorRequest::Inspect(Box::new(move |_| {
            let _ = applied_tx.send(());
        }));
        self.requests.send(inspect).ok()?;
        applied_rx.recv().ok()?;
        feed.wait_for_feed(&self.failstop);
        Some(feed.shared.next_sequence())
    }

    /// True when the exchange must stop on its own: a stage threw the
    /// fail-stop switch (a storage failure, a panic), or the engine thread
    /// ended.
    pub fn has_failed(&self) -> bool {
        self.failstop.is_tripped() || self.sequencer.is_finished()
    }

    /// The fail-stop switch every stage shares.
    pub fn failstop(&self) -> &Arc<FailStop> {
        &self.failstop
    }

    /// Stops accepting, closes the sessions, drains the sequencer's queue,
    /// waits for every thread and returns the engine with the final state.
    ///
    /// # Errors
    /// A stage threw the fail-stop switch ([`ServeError::FailStop`], its
    /// first reason), or the engine thread stopped on its own.
    pub fn shutdown(mut self) -> Result<carbonx_engine::Engine, ServeError> {
        if let Some(admin) = &self.admin {
            admin.ready.store(false, std::sync::atomic::Ordering::Release);
        }
        let _ = self.shutdown.send(true);
        self.gateway = None;
        drop(self.operator);
        drop(self.requests);
        self.runtime.shutdown_timeout(Duration::from_secs(2));
        if let Some(admin) = self.admin.take() {
            admin.runtime.shutdown_timeout(Duration::from_secs(2));
        }
        let sequencer = self.sequencer.join();
        if let Some(node) = self.cluster.take() {
            node.shutdown();
        }
        // Dropping the sequencer drops the fan-out: the stages' input closes.
        let engine = sequencer.map(|s| s.map(Sequencer::into_engine));
        let _ = self.router.join();
        let _ = self.eod.join();
        if let Some(feed) = self.feed.take() {
            feed.join();
        }
        if let Some(reason) = self.failstop.reason() {
            return Err(ServeError::FailStop(reason.to_string()));
        }
        Ok(engine.map_err(|_| ServeError::Panicked)??)
    }
}

/// The feed's threads, when the feed is enabled.
fn start_feed(
    config: &Config,
    engine: &carbonx_engine::Engine,
    data_dir: &Path,
    failstop: &Arc<FailStop>,
    leading: &Arc<AtomicBool>,
) -> Result<Option<FeedThreads>, ServeError> {
    if !config.feed.enabled {
        return Ok(None);
    }
    FeedThreads::start(config, engine, data_dir, Arc::clone(failstop), Arc::clone(leading)).map(Some)
}

/// The admin endpoint, when enabled, with the cluster's routes on a cluster node.
fn start_admin(
    config: &Config,
    tls: Accept,
    state: AdminState,
    cluster: Option<&Arc<ClusterNode>>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Option<AdminEndpoint>, ServeError> {
    if !config.admin.enabled {
        return Ok(None);
    }
    let state = match cluster {
        Some(node) => state.with_cluster(Arc::clone(node)),
        None => state,
    };
    AdminEndpoint::start(config, tls, state, shutdown.clone()).map(Some)
}

/// A single node recovers from its journal and starts the trading day; a
/// cluster node starts Raft instead: its state comes from Raft's snapshot
/// and the committed log, applied by the sequencer thread once it runs.
fn recover_or_join(
    config: &Config,
    options: &ServeOptions,
    mut sequencer: Sequencer<Fanout>,
    hub: &Arc<Hub>,
    leading: &Arc<AtomicBool>,
) -> Result<Recovered, ServeError> {
    let Some(cluster) = &config.cluster else {
        let replayed = sequencer.recover()?;
        sequencer.start_day(&SystemClock)?;
        return Ok(Recovered { sequencer, replayed, cluster: None });
    };
    let (sink, committed) = crossbeam::channel::unbounded();
    let (modes, failstop) = (config.data.file_modes(), Arc::clone(sequencer.failstop()));
    let (hub, leading) = (Arc::clone(hub), Arc::clone(leading));
    let on_leadership: OnLeadership = Arc::new(move |leads| {
        hub.set_serving(leads);
        leading.store(leads, Ordering::Release);
    });
    let node = ClusterNode::start(cluster, &options.data_dir, modes, sink, on_leadership, failstop)?;
    let sequencer = sequencer.with_replica(Replica::new(node.replication(), committed, node.applied()));
    Ok(Recovered { sequencer, replayed: 0, cluster: Some(Arc::new(node)) })
}

/// What [`recover_or_join`] hands back.
struct Recovered {
    sequencer: Sequencer<Fanout>,
    /// Journal records replayed (a cluster node replays through Raft: 0).
    replayed: u64,
    cluster: Option<Arc<ClusterNode>>,
}

/// The MoldUDP64 publisher's socket: bound to `[feed] source_address`
/// (any address when unset), multicast leaving by that interface with the
/// configured TTL and loop. Binding to loopback, as before, made every
/// multicast or remote destination fail.
fn publisher_socket(feed: &crate::config::FeedConfig) -> std::io::Result<UdpSocket> {
    let source = feed.source_address.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    if !source.is_unspecified() {
        socket.set_multicast_if_v4(&source)?;
    }
    socket.set_multicast_ttl_v4(feed.multicast_ttl)?;
    socket.set_multicast_loop_v4(feed.multicast_loop)?;
    Ok(socket.into())
}

/// Kernel send buffer of each feed consumer's socket: small, so that a
/// consumer that stops reading is caught by its backlog cap (counted in the
/// day log) instead of hiding megabytes in the kernel.
pub const FEED_SOCKET_SEND_BUFFER: u32 = 256 * 1024;

/// A feed listener whose accepted sockets inherit a small send buffer.
fn feed_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(FEED_SOCKET_SEND_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(1_024)
}

/// A tokio runtime of `workers` threads named `name`: `carbonx-io` for
/// order entry and the feeds, `carbonx-admin` for the admin endpoint
/// ([`AdminEndpoint`]), `carbonx-raft` for a cluster node's Raft.
///
/// # Errors
/// The runtime's threads could not be started.
pub fn named_runtime(workers: usize, name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).thread_name(name).enable_all().build()
}

fn runtime(workers: usize, name: &str) -> Result<tokio::runtime::Runtime, ServeError> {
    named_runtime(workers, name).map_err(io(format!("{name} runtime")))
}

/// The drop-copy listener, when desks are configured.
fn start_drop_copy(
    config: &Config,
    gateway: &Arc<Gateway>,
    accept: Accept,
    runtime: &tokio::runtime::Runtime,
    shutdown: &watch::Receiver<bool>,
) -> Result<Option<SocketAddr>, ServeError> {
    if config.gateway.drop_copy.is_empty() {
        return Ok(None);
    }
    let (listener, addr) = bind(runtime, config.gateway.drop_copy_listen, "drop copy")?;
    runtime.spawn(Arc::clone(gateway).serve_drop_copy(listener, accept, shutdown.clone()));
    Ok(Some(addr))
}

/// How each listener takes its connections: plain TCP, or TLS where the
/// configuration names a certificate and key.
struct ListenerTls {
    order_entry: Accept,
    drop_copy: Accept,
    feed: Accept,
    snapshot: Accept,
    admin: Accept,
}

impl ListenerTls {
    /// Loads every configured certificate and key (before recovery, so a
    /// bad file stops the start at once).
    fn load(config: &Config, base: &Path) -> Result<ListenerTls, ServeError> {
        let load = |files, what| Accept::from_config(files, base).map_err(|source| ServeError::Tls { what, source });
        Ok(ListenerTls {
            order_entry: load(config.gateway.tls.as_ref(), "order-entry port")?,
            drop_copy: load(config.gateway.drop_copy_tls.as_ref(), "drop-copy port")?,
            feed: load(config.feed.tls.as_ref(), "TCP feed port")?,
            snapshot: load(config.feed.snapshot_tls.as_ref(), "snapshot port")?,
            admin: load(config.admin.tls.as_ref(), "admin endpoint")?,
        })
    }
}

/// Binds a TCP listener for the runtime; the listener and its bound address.
fn bind(
    runtime: &tokio::runtime::Runtime,
    listen: SocketAddr,
    what: &str,
) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
    let listener = std::net::TcpListener::bind(listen).map_err(io(format!("{what} on {listen}")))?;
    listener.set_nonblocking(true).map_err(io(format!("{what} listener")))?;
    let bound = listener.local_addr().map_err(io(format!("{what} listener")))?;
    let _guard = runtime.enter();
    let listener = tokio::net::TcpListener::from_std(listener).map_err(io(format!("{what} listener")))?;
    Ok((listener, bound))
}

/// The admin endpoint: its address, what its `GET /readyz` reports, and
/// its own runtime (one thread), so that neither order entry nor the
/// admin endpoint's clients can starve the other.
struct AdminEndpoint {
    addr: SocketAddr,
    ready: Arc<std::sync::atomic::AtomicBool>,
    runtime: tokio::runtime::Runtime,
}

impl AdminEndpoint {
    /// Binds the endpoint and serves it under `[admin]`'s limits; not
    /// ready until the server says so.
    fn start(
        config: &Config,
        accept: Accept,
        state: AdminState,
        shutdown: watch::Receiver<bool>,
    ) -> Result<AdminEndpoint, ServeError> {
        let limits = config.admin.limits().map_err(|reason| ServeError::Io {
            what: "admin endpoint".into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason),
        })?;
        let runtime = runtime(1, "carbonx-admin")?;
        let (listener, addr) = bind(&runtime, config.admin.listen, "admin endpoint")?;
        let ready = state.readiness();
        runtime.spawn(crate::admin::serve(listener, accept, limits, Arc::new(state), shutdown));
        Ok(AdminEndpoint { addr, ready, runtime })
    }
}

/// Starts the end-of-day writer's thread; its input and handle.
fn start_eod(
    engine: &carbonx_engine::Engine,
    data_dir: &Path,
    modes: carbonx_soup::files::FileModes,
    failstop: Arc<FailStop>,
) -> Result<(crossbeam::channel::Sender<EodInput>, JoinHandle<()>), ServeError> {
    let (eod_tx, eod_rx) = crossbeam::channel::bounded::<EodInput>(STAGE_QUEUE_MAX);
    let eod =
        EodWriter::new(data_dir, engine.instruments().to_vec(), account_codes(engine), modes).with_failstop(failstop);
    let handle = std::thread::Builder::new()
        .name("carbonx-eod".into())
        .spawn(move || eod.run(&eod_rx))
        .map_err(io("end-of-day thread"))?;
    Ok((eod_tx, handle))
}

/// The engine thread (watched: a panic throws the fail-stop switch).
fn spawn_sequencer(
    mut sequencer: Sequencer<Fanout>,
    commands: crossbeam::channel::Receiver<Vec<Command>>,
    operator: crossbeam::channel::Receiver<OperatorRequest>,
) -> Result<JoinHandle<Result<Sequencer<Fanout>, SequencerError>>, ServeError> {
    std::thread::Builder::new()
        .name("carbonx-engine".into())
        .spawn(move || {
            let _watch = Arc::clone(sequencer.failstop()).watch("sequencer");
            sequencer.run_with_operator(&commands, &operator, &SystemClock).map(|()| sequencer)
        })
        .map_err(io("engine thread"))
}

/// Waits until the router and the feed have logged everything the
/// recovery published; a stage that failed meanwhile stops the start.
fn wait_for_stages(
    router: &crossbeam::channel::Sender<StageInput>,
    feed: Option<&FeedThreads>,
    failstop: &FailStop,
) -> Result<(), ServeError> {
    wait_for_router(router, failstop);
    if let Some(feed) = feed {
        feed.wait_for_feed(failstop);
    }
    match failstop.reason() {
        Some(reason) => Err(ServeError::FailStop(reason.to_string())),
        None => Ok(()),
    }
}

/// Starts the router thread: the sequencer's output into the users' streams.
fn start_router(hub: &Arc<Hub>, input: crossbeam::channel::Receiver<StageInput>) -> Result<JoinHandle<()>, ServeError> {
    let hub = Arc::clone(hub);
    let router = std::thread::Builder::new().name("carbonx-router".into()).spawn(move || hub.run_router(&input));
    router.map_err(io("router thread"))
}

/// Waits until the router has written everything published so far.
fn wait_for_router(stage: &crossbeam::channel::Sender<StageInput>, failstop: &FailStop) {
    let (reached_tx, reached_rx) = crossbeam::channel::bounded(1);
    if stage.send(StageInput::Barrier(reached_tx)).is_ok() {
        wait_for_barrier(&reached_rx, failstop);
    }
}

/// Waits for a stage to reach a barrier, or for a fail-stop: a stage that
/// failed on its day log stops taking input but may still hold the
/// barrier, so waiting on the barrier alone could hang the start.
fn wait_for_barrier(reached: &crossbeam::channel::Receiver<()>, failstop: &FailStop) {
    while !failstop.is_tripped() {
        match reached.recv_timeout(std::time::Duration::from_millis(20)) {
            Err(crossbeam::channel::RecvTimeoutError::Timeout) => continue,
            _ => return,
        }
    }
}

/// The account codes in account order (empty without accounts).
fn account_codes(engine: &carbonx_engine::Engine) -> Vec<[u8; 4]> {
    let Some(table) = engine.accounts() else {
        return Vec::new();
    };
    (0..table.len() as u32).filter_map(|n| table.code(AccountId::new(n)).copied()).collect()
}

/// The banner's session line: loud in always-open mode, which never
/// closes by itself (RULES §4.3); the hours in calendar mode.
fn session_mode_line(market: &carbonx_engine::EngineConfig) -> String {
    match market.session {
        carbonx_engine::SessionMode::AlwaysOpen => "session mode: ALWAYS-OPEN (demo): the market never closes; \
             the trading day ends only at `carbonx admin roll`"
            .to_string(),
        carbonx_engine::SessionMode::Calendar => {
            let offset = market.utc_offset_secs;
            let sign = if offset < 0 { '-' } else { '+' };
            let (hours, minutes) = (offset.unsigned_abs() / 3600, offset.unsigned_abs() % 3600 / 60);
            let h = market.session_hours();
            let (open, lunch, afternoon, close, roll) =
                (h.morning_open, h.morning_close, h.afternoon_open, h.afternoon_close, h.roll_at);
            format!(
                "session mode: calendar: listing {open}-{lunch} and {afternoon}-{close}, blocks {afternoon}-{close} \
                 (UTC{sign}{hours:02}:{minutes:02}), weekdays except {} holidays; the close at {close}, \
                 the day rolls by itself at {roll}",
                market.holidays.len()
            )
        }
    }
}

/// The text printed at start-up: where to connect, as whom, and when.
pub fn banner(config: &Config, server: &Server, data_dir: &Path) -> String {
    let mut text =
        format!("carbonx serving\n  order entry (SoupBinTCP 3.0 + OUCH 4.2): {}\n", server.order_entry_addr());
    text.push_str(&format!("  {}\n", session_mode_line(&config.market)));
    if let (Some(tcp), Some(snapshot), Some(rerequest)) =
        (server.tcp_feed_addr(), server.snapshot_addr(), server.rerequest_addr())
    {
        let udp: Vec<String> = config.feed.publish_to.iter().map(ToString::to_string).collect();
        text.push_str(&format!(
            "  ITCH 5.0 feed: TCP {tcp}, snapshot {snapshot}, MoldUDP64 to {}, re-requests {rerequest}\n",
            udp.join(", ")
        ));
        if config.feed.users.is_empty() {
            text.push_str(
                "  feed and snapshot logins: ANY username and password (demo; list [[feed.users]] in a real config)\n",
            );
        }
    }
    if let Some(addr) = server.drop_copy_addr() {
        let desks: Vec<String> =
            config.gateway.drop_copy.iter().map(|d| format!("{} ({})", d.name, d.users.join(", "))).collect();
        text.push_str(&format!("  drop copy (SoupBinTCP, read-only): {addr}  desks {}\n", desks.join("; ")));
    }
    if let Some(admin) = server.admin_addr() {
        // Only the demo market's token is public (RULES §13); a real one
        // never reaches a terminal or a log.
        let token = if config.demo { format!("token `{}`", config.admin.token) } else { "token as configured".into() };
        let scheme = if config.admin.tls.is_some() { "https" } else { "http" };
        text.push_str(&format!("  admin (HTTP, /metrics): {scheme}://{admin}  {token}\n"));
    }
    if let Some(cluster) = &config.cluster {
        let members: Vec<String> = cluster.members.iter().map(|m| format!("{} (raft {})", m.id, m.raft)).collect();
        text.push_str(&format!(
            "  cluster: node {} of {}; order entry only while this node leads\n",
            cluster.node,
            members.join(", ")
        ));
    }
    text.push_str(&format!("  data directory: {}\n", data_dir.display()));
    if config.demo && config.gateway.users == carbonx_gateway::config::GatewayConfig::demo().users {
        text.push_str("  demo users DEMO01..DEMO10, password `demo`; DEMOnn trades accounts (nn-1)*340+1 ..= nn*340\n");
        text.push_str("  (DEMO01: 0001..0340, DEMO10: 3061..3400)\n");
    } else {
        for user in &config.gateway.users {
            text.push_str(&format!("  user {} trades {}\n", user.name, user.accounts.join(", ")));
        }
    }
    text
}
