//! A three-node cluster of real `carbonx serve` processes on loopback
//! (`[cluster]`, openraft), four users trading on the leader:
//!
//! - the leader is killed with SIGKILL at seeded moments, again and again,
//!   and restarted as a follower each time; a leader is paused with SIGSTOP
//!   past the election timeout, then let go with SIGCONT;
//! - after each failover every user logs in to the new leader from
//!   sequence 1: its stream must begin with exactly what it received
//!   before (same numbers, same bytes): nothing acknowledged is lost;
//! - at the end each fill is reported once per side, every node reaches
//!   the same applied index and state hash, and `carbonx replay --verify`
//!   reproduces that hash from every node's data directory.
//!
//! The failover time (SIGKILL to the first Accepted from the new leader)
//! is printed as p50 and max.
//!
//! Seed: `CARBONX_SEED` (printed); kills: `CARBONX_CLUSTER_KILLS` (default 10).

mod support;

use carbonx::admin::client::{AdminAction, AdminClient, ClusterAction};
use carbonx::cluster::log_store::LogStore;
use carbonx::cluster::state_machine::StateMachine;
use carbonx::config::{Config, DEMO_ADMIN_TOKEN};
use carbonx_gateway::ouch::Outbound;
use carbonx_testkit::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::admin::sample;
use support::cluster::{
    Node, PATIENCE, agreed_leader, converged, login_to_leader, three_nodes, verify_replay, voters, whole_stream,
};
use support::flow::{Flow, check_prefix, order, trade};

const USERS: [&str; 4] = ["DEMO01", "DEMO02", "DEMO03", "DEMO04"];
/// Messages each user sends per round.
const FLOW: u32 = 5_000;

/// The time from `since` to the first Accepted of a fresh order on the leader.
/// The time from `since` to the first Accepted of a fresh order on the
/// leader. The order accepted by the previous leader is resent first: it
/// must be ignored without a reply (exactly once across a failover), so
/// the first Accepted is the fresh one's.
async fn first_accepted(addr: SocketAddr, since: Instant, round: usize) -> Duration {
    let mut client = login_to_leader(addr, "DEMO05", 0).await;
    if round > 0 {
        let resent = format!("F{:02}", round - 1);
        client.send(&order(&resent, b'B', 1, 700_000, "1361")).await.unwrap();
    }
    let token = format!("F{round:02}");
    client.send(&order(&token, b'B', 1, 700_000, "1361")).await.unwrap();
    loop {
        match client.next_message(Duration::from_secs(5)).await {
            Ok((_, Outbound::Accepted(a))) => {
                assert_eq!(String::from_utf8_lossy(&a.token).trim(), token, "a resent token was accepted again");
                return since.elapsed();
            }
            Ok(_) => {}
            Err(err) => panic!("no Accepted from the new leader: {err}"),
        }
    }
}

struct Run {
    nodes: Vec<Node>,
    runtime: tokio::runtime::Runtime,
    acked: HashMap<&'static str, Vec<Outbound>>,
    rng: Rng,
}

impl Run {
    /// Users log in to the leader and trade; returns their tasks.
    fn trade_on(&mut self, leader: usize, round: usize, messages: u32) -> Vec<tokio::task::JoinHandle<Vec<Outbound>>> {
        let addr = self.nodes[leader].order_entry;
        let logins: Vec<_> = USERS.iter().map(|user| self.runtime.spawn(whole_stream(addr, user))).collect();
        let mut tasks = Vec::new();
        for (i, (user, login)) in USERS.iter().zip(logins).enumerate() {
            let (client, stream) = self.runtime.block_on(login).unwrap();
            check_prefix(user, &self.acked[user], &stream);
            let flow = Flow { tag: 'C', user_index: i, round, messages };
            tasks.push(self.runtime.spawn(trade(client, flow, self.rng.next_u64(), stream)));
        }
        tasks
    }

    fn collect(&mut self, tasks: Vec<tokio::task::JoinHandle<Vec<Outbound>>>) {
        for (user, task) in USERS.iter().zip(tasks) {
            let received = self.runtime.block_on(task).unwrap();
            self.acked.insert(user, received);
        }
    }

    fn leader(&self) -> usize {
        let Some(leader) = agreed_leader(&self.nodes) else {
            let logs: Vec<String> =
                self.nodes.iter().map(|n| std::fs::read_to_string(&n.log).unwrap_or_default()).collect();
            panic!("no leader elected within {PATIENCE:?}; logs:\n{}", logs.join("\n---\n"));
        };
        leader
    }
}

/// A MoldUDP64 datagram's session, first sequence number and message count.
type Datagram = ([u8; 10], u64, u16);

/// Every MoldUDP64 datagram's [`Datagram`], heartbeats and end of session
/// left out, until `stop` is set.
fn collect_datagrams(socket: std::net::UdpSocket, stop: Arc<AtomicBool>) -> Vec<Datagram> {
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Acquire) {
        let Ok(len) = socket.recv(&mut buf) else { continue };
        if len >= 20 {
            let session: [u8; 10] = buf[..10].try_into().unwrap();
            let seq = u64::from_be_bytes(buf[10..18].try_into().unwrap());
            let count = u16::from_be_bytes([buf[18], buf[19]]);
            if count > 0 && count < 0xFFFF {
                seen.push((session, seq, count));
            }
        }
    }
    seen
}

/// No message number of a session (a trading day) went out twice: only
/// the node whose leader sequenced a message sends it, whatever the
/// failovers.
fn check_no_number_sent_twice(datagrams: &[Datagram]) {
    assert!(!datagrams.is_empty(), "no MoldUDP64 datagram arrived");
    let mut numbers: Vec<([u8; 10], u64)> =
        datagrams.iter().flat_map(|&(session, seq, n)| (seq..seq + u64::from(n)).map(move |s| (session, s))).collect();
    let sent = numbers.len();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), sent, "a MoldUDP64 message number was sent twice");
}

/// A node's TCP feed from sequence 1 until quiet: every message's bytes.
async fn tcp_feed(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut client = carbonx_soup::client::Client::connect(addr).await.unwrap();
    let answer = client.login("WATCH", "watch", "", 1).await.unwrap();
    assert!(matches!(answer, carbonx_soup::client::Received::LoginAccepted { .. }), "{answer:?}");
    let mut messages = Vec::new();
    while let Ok((seq, bytes)) = client.next_sequenced(Duration::from_millis(500)).await {
        assert_eq!(seq, messages.len() as u64 + 1, "gap in a TCP feed");
        messages.push(bytes.to_vec());
    }
    messages
}

impl Run {
    /// An operator command sent to a follower is refused, naming the leader.
    fn check_a_follower_refuses_commands(&self) {
        let leader = self.leader();
        let follower = &self.nodes[(leader + 1) % 3];
        let admin = AdminClient::new(&format!("http://{}", follower.admin), DEMO_ADMIN_TOKEN);
        let refused = admin.run(&AdminAction::Halt { stock: "CEA".into() }).unwrap_err().to_string();
        let leader_admin = self.nodes[leader].admin.to_string();
        assert!(refused.contains("does not lead") && refused.contains(&leader_admin), "{refused}");
    }

    /// Kills the leader `kills` times while the users trade, restarting it
    /// as a follower; the failover times (SIGKILL to the first Accepted).
    fn kill_leaders(&mut self, kills: usize) -> Vec<Duration> {
        let mut failovers = Vec::new();
        for round in 0..kills {
            let leader = self.leader();
            let tasks = self.trade_on(leader, round, FLOW);
            std::thread::sleep(Duration::from_millis(50 + self.rng.below(300)));
            let killed = Instant::now();
            self.nodes[leader].kill(); // SIGKILL
            self.collect(tasks);
            let new_leader = self.leader();
            assert_ne!(new_leader, leader);
            let addr = self.nodes[new_leader].order_entry;
            failovers.push(self.runtime.block_on(first_accepted(addr, killed, round)));
            self.nodes[leader].start(); // back as a follower
        }
        failovers
    }

    /// Pauses the leader past the election timeout while its users trade:
    /// the others elect a new leader, which takes orders; then lets it go.
    fn pause_leader(&mut self, round: usize) {
        let leader = self.leader();
        let tasks = self.trade_on(leader, round, FLOW);
        std::thread::sleep(Duration::from_millis(200));
        self.nodes[leader].signal("-STOP");
        let paused = Instant::now();
        let others: Vec<usize> = (0..3).filter(|&n| n != leader).collect();
        let new_leader = loop {
            assert!(paused.elapsed() < PATIENCE, "no new leader while the old one was paused");
            let named = others.iter().copied().find(|&n| self.nodes[n].view().is_some_and(|v| v.role == "leader"));
            if let Some(n) = named {
                break n;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let addr = self.nodes[new_leader].order_entry;
        self.runtime.block_on(first_accepted(addr, paused, round));
        self.nodes[leader].signal("-CONT");
        self.collect(tasks);
    }

    /// Every message any user received is in its stream on the final
    /// leader, with the same number; each fill once per side. The matches.
    fn check_streams(&mut self) -> usize {
        let leader = self.leader();
        let mut fills: HashMap<u64, u32> = HashMap::new();
        for user in USERS {
            let (_, stream) = self.runtime.block_on(whole_stream(self.nodes[leader].order_entry, user));
            check_prefix(user, &self.acked[user], &stream);
            for message in &stream {
                if let Outbound::Executed(e) = message {
                    *fills.entry(e.match_number).or_default() += 1;
                }
            }
        }
        assert!(!fills.is_empty(), "the clients never traded");
        assert!(fills.values().all(|&n| n == 2), "a fill reported other than once per side");
        fills.len()
    }

    /// The operator rolls the day on the leader (the demo market is always
    /// open) and the users trade on the next day; every node then builds a
    /// snapshot from the day's start and purges its log up to it.
    fn roll_the_day(&mut self, round: usize) {
        let leader = self.leader();
        let admin = AdminClient::new(&format!("http://{}", self.nodes[leader].admin), DEMO_ADMIN_TOKEN);
        let rolled = admin.run(&AdminAction::Roll).unwrap();
        assert!(rolled.contains("\"rolled\": true"), "{rolled}");
        self.acked.values_mut().for_each(Vec::clear); // each day's numbers start at 1
        let tasks = self.trade_on(leader, round, FLOW / 5); // enough for a day's log after the roll
        self.collect(tasks);
        let deadline = Instant::now() + PATIENCE;
        for node in &self.nodes {
            let purged = node.data.join("raft").join("purged");
            while !purged.exists() {
                assert!(Instant::now() < deadline, "node {} never purged its log after the roll", node.id);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// A follower whose data directory is lost is replaced as the
    /// operator's guide says: removed from the membership, started empty
    /// with `join = true`, added back; it catches up from the others. The
    /// node's id.
    fn rebuild_a_follower(&mut self) -> u64 {
        let leader = self.leader();
        let follower = (leader + 1) % 3;
        let id = self.nodes[follower].id;
        self.nodes[follower].kill();
        std::fs::remove_dir_all(&self.nodes[follower].data).unwrap();
        let admin = AdminClient::new(&format!("http://{}", self.nodes[leader].admin), DEMO_ADMIN_TOKEN);
        let remove = ClusterAction::Remove { id };
        let removed = voters(&admin.run(&AdminAction::Cluster { action: Some(remove) }).unwrap());
        assert!(!removed.contains(&id) && removed.len() == 2, "{id} still a voter: {removed:?}");
        let mut config = Config::load(&self.nodes[follower].config).unwrap();
        config.cluster.as_mut().unwrap().join = true;
        std::fs::write(&self.nodes[follower].config, config.to_toml()).unwrap();
        self.nodes[follower].start();
        let member = config.cluster.as_ref().unwrap().me().unwrap().clone();
        let add = ClusterAction::Add {
            id,
            raft: member.raft.to_string(),
            order_entry: member.order_entry.to_string(),
            admin: member.admin.to_string(),
        };
        let added = voters(&admin.run(&AdminAction::Cluster { action: Some(add) }).unwrap());
        assert_eq!(added, vec![1, 2, 3], "{id} not a voter again");
        id
    }
}

/// Each node's `/metrics` carries its Raft figures: one leader among them,
/// every node on the converged applied index, its snapshot from the roll
/// and its log purged up to it.
fn check_raft_metrics(nodes: &[Node]) {
    let mut leaders = 0;
    for node in nodes {
        let view = node.view().expect("a node answers /cluster");
        let admin = AdminClient::new(&format!("http://{}", node.admin), DEMO_ADMIN_TOKEN);
        let text = admin.run(&AdminAction::Metrics).unwrap();
        let gauge = |name: &str| -> u64 { sample(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}")) };
        leaders += gauge("carbonx_raft_leading");
        assert_eq!(gauge("carbonx_raft_term"), view.term, "node {}", node.id);
        assert_eq!(gauge("carbonx_raft_applied_index"), view.applied_index, "node {}", node.id);
        assert!(gauge("carbonx_raft_commit_index") >= view.applied_index, "node {}", node.id);
        assert!(gauge("carbonx_raft_snapshot_index") > 0 && gauge("carbonx_raft_purged_index") > 0, "node {}", node.id);
        assert!(gauge("carbonx_raft_commit_seconds_count") > 0 || view.role != "leader", "node {}", node.id);
    }
    assert_eq!(leaders, 1, "one node leads");
}

/// A stopped node's Raft files: its snapshot starts from the day's start,
/// and its log from after the roll (purged, or never sent: `rebuilt`
/// joined after the roll, so it can only have caught up by the snapshot).
fn check_snapshot_and_purged_log(node: &Node, rebuilt: u64) {
    let raft = node.data.join("raft");
    let (last, snapshot) = StateMachine::read_snapshot(&raft).unwrap().expect("a snapshot");
    let day = snapshot.day_start.expect("the snapshot starts from the day's start");
    let (entries, _) = LogStore::read_all(&raft).unwrap();
    let first = entries.first().map_or(last + 1, |e| e.log_id.index);
    assert!(first > day.roll_index, "node {}: the log before the roll (entry {}) is kept", node.id, day.roll_index);
    assert!(first <= last + 1, "node {}: a hole between the snapshot ({last}) and the log ({first})", node.id);
    let joined = if node.id == rebuilt { " (rejoined after the roll)" } else { "" };
    println!(
        "node {}{joined}: snapshot at entry {last} from the roll at {}, log from {first}",
        node.id, day.roll_index
    );
}

#[test]
fn leader_failovers_lose_no_acknowledged_message() {
    let seed = carbonx_testkit::seed("cluster test", 0xC1A5_7E12);
    let kills: usize = std::env::var("CARBONX_CLUSTER_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    println!("{kills} leader kills (CARBONX_CLUSTER_KILLS)");
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let collector = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || collect_datagrams(udp, stop)
    });
    let mut run = Run {
        nodes: three_nodes(tmp.path(), Some(udp_addr)),
        runtime,
        acked: USERS.iter().map(|u| (*u, Vec::new())).collect(),
        rng: Rng::new(seed),
    };
    run.nodes.iter_mut().for_each(Node::start);
    let mut failovers = run.kill_leaders(kills);
    run.pause_leader(kills);
    let matches = run.check_streams();
    let total: usize = run.acked.values().map(Vec::len).sum();
    run.roll_the_day(kills + 1);
    let rebuilt = run.rebuild_a_follower();
    let hash = converged(&run.nodes);
    check_raft_metrics(&run.nodes);
    run.check_a_follower_refuses_commands();
    let feeds: Vec<Vec<Vec<u8>>> = run.nodes.iter().map(|n| run.runtime.block_on(tcp_feed(n.tcp_feed))).collect();
    assert!(!feeds[0].is_empty() && feeds.iter().all(|f| *f == feeds[0]), "the nodes' TCP feeds differ");
    stop.store(true, Ordering::Release);
    check_no_number_sent_twice(&collector.join().unwrap());
    failovers.sort();
    println!(
        "{total} messages received across {kills} leader kills and a pause; {matches} matches; \
         failover p50 {:?}, max {:?}",
        failovers[failovers.len() / 2],
        failovers.last().unwrap()
    );
    for node in &mut run.nodes {
        let stopped = node.stop();
        assert_eq!(stopped, hash, "node {} stopped on another state", node.id);
        check_snapshot_and_purged_log(node, rebuilt);
        verify_replay(node, &hash);
    }
}
