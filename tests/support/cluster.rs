//! A cluster's nodes as `carbonx serve` processes (each in a network
//! namespace of the test's, or all on loopback), their `/cluster` views,
//! the leader, logins that follow it, and the final checks: every node on
//! the same applied index and state hash, and `carbonx replay --verify`
//! reproducing it from every node's data directory.

use carbonx::admin::api::{ClusterView, MembershipAnswer};
use carbonx::admin::client::AdminClient;
use carbonx::cluster::config::{ClusterConfig, MemberConfig};
use carbonx::config::{Config, DEMO_ADMIN_TOKEN};
use carbonx_gateway::client::{Client, Login};
use carbonx_gateway::ouch::Outbound;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A member's addresses and its TCP feed's.
struct Addresses {
    member: MemberConfig,
    tcp_feed: SocketAddr,
}

/// Three nodes' configuration files: the demo market, free loopback ports,
/// every node's MoldUDP64 to `udp` (none without).
pub fn three_nodes(dir: &Path, udp: Option<SocketAddr>) -> Vec<Node> {
    let members: Vec<Addresses> = (1..=3)
        .map(|id| Addresses {
            member: MemberConfig { id, raft: free_addr(), order_entry: free_addr(), admin: free_addr() },
            tcp_feed: free_addr(),
        })
        .collect();
    members
        .iter()
        .map(|member| {
            let mut config = Config::demo().on_free_ports();
            (config.feed.publish_to, config.feed.tcp) = (udp.into_iter().collect(), member.tcp_feed);
            config.cluster = Some(ClusterConfig {
                node: member.member.id,
                heartbeat_ms: 50,
                election_timeout_min_ms: 200,
                election_timeout_max_ms: 400,
                join: false,
                members: members.iter().map(|m| m.member.clone()).collect(),
            });
            let id = member.member.id;
            let path = dir.join(format!("node{id}.toml"));
            std::fs::write(&path, config.to_toml()).unwrap();
            Node {
                id,
                config: path,
                data: dir.join(format!("node{id}")),
                log: dir.join(format!("node{id}.log")),
                netns: None,
                order_entry: member.member.order_entry,
                admin: member.member.admin,
                tcp_feed: member.tcp_feed,
                child: None,
            }
        })
        .collect()
}

/// Longest wait for anything the cluster must do (elect, converge, start).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One node: its files, its addresses, its process when running.
pub struct Node {
    /// Node id.
    pub id: u64,
    /// The network namespace it runs in (`None`: the test's own).
    pub netns: Option<String>,
    pub config: PathBuf,
    pub data: PathBuf,
    pub log: PathBuf,
    pub order_entry: SocketAddr,
    pub admin: SocketAddr,
    pub tcp_feed: SocketAddr,
    pub child: Option<Child>,
}

impl Node {
    /// Starts `carbonx serve` (inside `netns` when set), its log lines to `log`.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut command = match &self.netns {
            Some(netns) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_carbonx")]);
                ip
            }
            None => Command::new(env!("CARGO_BIN_EXE_carbonx")),
        };
        let child = command
            .args(["serve", "--config"])
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Sends `signal` (`-STOP`, `-CONT`, `-TERM`).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    /// SIGKILL, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // it may have exited on its own (a fail-stop)
            let _ = child.wait();
        }
    }

    /// SIGTERM; the state hash it prints when it stops.
    pub fn stop(&mut self) -> String {
        self.signal("-TERM");
        let mut child = self.child.take().unwrap();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(child.wait().unwrap().success(), "node {} did not stop cleanly: {out}\n{log}", self.id);
        out.split("state hash ").nth(1).unwrap_or_else(|| panic!("no hash in {out}")).trim().to_string()
    }

    /// Its `/cluster` view, `None` when it does not answer within 500 ms.
    pub fn view(&self) -> Option<ClusterView> {
        let client = AdminClient::new(&format!("http://{}", self.admin), DEMO_ADMIN_TOKEN);
        client.with_timeout(Duration::from_millis(500)).cluster_view().ok()
    }

    /// Whether its process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// A test that fails leaves no node running (SIGKILL works on a paused one too).
impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback address whose port is free now, never handed out twice in
/// this process, and below Linux's ephemeral range (32768 and up): a port
/// the system picked (`:0`) could be picked again for an outgoing
/// connection (the nodes' own, the test's clients) before the node binds
/// it, and the node would not start.
pub fn free_addr() -> SocketAddr {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const FIRST: u32 = 10_000;
    const PORTS: u32 = 22_000;
    let spread = std::process::id().wrapping_mul(97) % PORTS;
    for _ in 0..PORTS {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(FIRST + (spread + n) % PORTS).expect("below 32000");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port from {FIRST} to {}", FIRST + PORTS);
}

/// The node every running node names as leader, once that leader says it
/// leads; `None` after [`PATIENCE`].
pub fn agreed_leader(nodes: &[Node]) -> Option<usize> {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let views: Vec<ClusterView> = nodes.iter().filter(|n| n.running()).filter_map(Node::view).collect();
        let leaders: Vec<usize> = views
            .iter()
            .filter(|v| v.role == "leader")
            .filter_map(|v| nodes.iter().position(|n| n.id == v.node))
            .collect();
        if let [leader] = leaders[..] {
            return Some(leader);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Logs in asking for the stream from `from`, retrying while the node
/// does not lead yet (Login Rejected `S`) or does not answer.
pub async fn login_to_leader(addr: SocketAddr, user: &str, from: u64) -> Client {
    let login = Login { user, password: "demo", session: "", sequence: from };
    match Client::login_to_leader(&[addr], None, &login, PATIENCE).await {
        Ok(leader) => leader.client,
        Err(err) => panic!("{user}: no login at {addr}: {err}"),
    }
}

/// Logs in from sequence 1 and reads the whole stream so far.
pub async fn whole_stream(addr: SocketAddr, user: &str) -> (Client, Vec<Outbound>) {
    let mut client = login_to_leader(addr, user, 1).await;
    let mut stream = Vec::new();
    while let Ok((seq, message)) = client.next_message(Duration::from_millis(300)).await {
        assert_eq!(seq, stream.len() as u64 + 1, "{user}: gap or duplicate in the replay");
        stream.push(message);
    }
    (client, stream)
}

/// The voters in `carbonx admin cluster add|remove`'s answer.
pub fn voters(answer: &str) -> Vec<u64> {
    serde_json::from_str::<MembershipAnswer>(answer).unwrap().voters
}

/// Waits until every node shows the same applied index and state hash; the hash.
pub fn converged(nodes: &[Node]) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let views: Vec<Option<ClusterView>> = nodes.iter().map(Node::view).collect();
        if let Some(first) = views[0].as_ref() {
            let same = views.iter().all(|v| {
                v.as_ref().is_some_and(|v| v.applied_index == first.applied_index && v.state_hash == first.state_hash)
            });
            if same && first.applied_index > 0 {
                return first.state_hash.clone();
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes.iter().map(|n| std::fs::read_to_string(&n.log).unwrap_or_default()).collect();
            panic!("the nodes did not converge: {views:?}\nlogs:\n{}", logs.join("\n---\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `carbonx replay --verify` on the node's data directory (its Raft log).
pub fn verify_replay(node: &Node, hash: &str) {
    let replay = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["replay", "--config"])
        .arg(&node.config)
        .arg("--data-dir")
        .arg(&node.data)
        .args(["--verify", hash])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "node {}: {report}{}", node.id, String::from_utf8_lossy(&replay.stderr));
    assert!(report.contains("invariants:       hold"), "{report}");
}
