//! A network partition (issue 21): a three-node cluster whose leader is
//! cut off from the other two while its clients can still reach it.
//!
//! - the cut-off leader acknowledges nothing new: an order sent to it gets
//!   no Accepted, however long it waits;
//! - the majority elects a leader of a later term, which takes orders;
//! - healed, the old leader follows, its sessions are closed, the order it
//!   never acknowledged is in no stream, and every node converges on one
//!   state that `carbonx replay --verify` reproduces from each data directory.
//!
//! Each node runs in a network namespace of the test's own with two links
//! to a hub namespace: one for Raft (cut by taking the hub's end down), one
//! for clients (the test talks to the nodes from the hub). Where
//! namespaces cannot be made (not root, no `ip`), the test says so and
//! passes without running.

mod support;

use carbonx::cluster::config::{ClusterConfig, MemberConfig};
use carbonx::config::Config;
use carbonx_gateway::client::{Client, ClientError};
use carbonx_gateway::ouch::Outbound;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use support::cluster::{Node, PATIENCE, agreed_leader, converged, login_to_leader, verify_replay, whole_stream};
use support::flow::order;
use support::netns::{Netns, ip};

/// The Raft network: node k at `10.92.1.k`.
const RAFT_NET: &str = "10.92.1";
/// The clients' network: node k at `10.92.2.k`, the test at `.100`.
const CLIENT_NET: &str = "10.92.2";
/// How long an order sent to the cut-off leader must stay unanswered:
/// several election timeouts (400 ms at most) and lease (400 ms).
const NO_ANSWER_FOR: Duration = Duration::from_secs(3);

/// The hub (two bridges) and one namespace per node.
struct Lab {
    hub: Netns,
    nodes: Vec<Netns>,
}

impl Lab {
    fn new() -> Result<Lab, String> {
        let hub = Netns::new('h')?;
        for (bridge, addr) in [("rbr", None), ("cbr", Some(format!("{CLIENT_NET}.100/24")))] {
            ip(&["-n", &hub.name, "link", "add", bridge, "type", "bridge"])?;
            ip(&["-n", &hub.name, "link", "set", bridge, "up"])?;
            if let Some(addr) = addr {
                ip(&["-n", &hub.name, "addr", "add", &addr, "dev", bridge])?;
            }
        }
        let mut nodes = Vec::new();
        for k in 1..=3u8 {
            let netns = Netns::new(char::from(b'0' + k))?;
            link(&hub, &netns, k, 'r', "rbr", RAFT_NET)?;
            link(&hub, &netns, k, 'c', "cbr", CLIENT_NET)?;
            nodes.push(netns);
        }
        Ok(Lab { hub, nodes })
    }

    /// Takes node k's Raft link down (`false`) or up (`true`) at the hub.
    fn raft_link(&self, k: u64, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.hub.name, "link", "set", &format!("r{k}h"), state]).unwrap();
    }
}

/// A veth pair from node k's namespace (`<net>.k/24`) to the hub's `bridge`.
fn link(hub: &Netns, node: &Netns, k: u8, kind: char, bridge: &str, net: &str) -> Result<(), String> {
    let (inside, outside) = (format!("{kind}{k}"), format!("{kind}{k}h"));
    ip(&["link", "add", &inside, "netns", &node.name, "type", "veth", "peer", "name", &outside, "netns", &hub.name])?;
    ip(&["-n", &node.name, "addr", "add", &format!("{net}.{k}/24"), "dev", &inside])?;
    ip(&["-n", &node.name, "link", "set", &inside, "up"])?;
    ip(&["-n", &hub.name, "link", "set", &outside, "master", bridge])?;
    ip(&["-n", &hub.name, "link", "set", &outside, "up"])
}

fn addr(net: &str, k: u64, port: u16) -> SocketAddr {
    format!("{net}.{k}:{port}").parse().unwrap()
}

/// The three nodes' configurations, each in its namespace.
fn nodes(dir: &Path, lab: &Lab) -> Vec<Node> {
    let members: Vec<MemberConfig> = (1..=3)
        .map(|k| MemberConfig {
            id: k,
            raft: addr(RAFT_NET, k, 7011),
            order_entry: addr(CLIENT_NET, k, 7001),
            admin: addr(CLIENT_NET, k, 7010),
        })
        .collect();
    members
        .iter()
        .zip(&lab.nodes)
        .map(|(member, netns)| {
            let mut config = Config::demo().on_free_ports();
            config.cluster = Some(ClusterConfig {
                node: member.id,
                heartbeat_ms: 50,
                election_timeout_min_ms: 200,
                election_timeout_max_ms: 400,
                join: false,
                members: members.clone(),
            });
            let path = dir.join(format!("node{}.toml", member.id));
            std::fs::write(&path, config.to_toml()).unwrap();
            Node {
                id: member.id,
                netns: Some(netns.name.clone()),
                config: path,
                data: dir.join(format!("node{}", member.id)),
                log: dir.join(format!("node{}.log", member.id)),
                order_entry: member.order_entry,
                admin: member.admin,
                tcp_feed: addr(CLIENT_NET, member.id, 0),
                child: None,
            }
        })
        .collect()
}

/// The node among `candidates` that leads in a term after `term`.
fn new_leader(nodes: &[Node], candidates: &[usize], term: u64) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "the majority elected no leader");
        let leading =
            candidates.iter().copied().find(|&n| nodes[n].view().is_some_and(|v| v.role == "leader" && v.term > term));
        if let Some(n) = leading {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until node `n` says it follows.
fn until_follower(nodes: &[Node], n: usize) {
    let deadline = Instant::now() + PATIENCE;
    while nodes[n].view().is_none_or(|v| v.role != "follower") {
        assert!(Instant::now() < deadline, "the old leader never stepped down");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The token of the first Accepted within `wait` (other messages, such as
/// the day's system events, are passed over); `Ok(None)` at the deadline.
async fn accepted_within(client: &mut Client, wait: Duration) -> Result<Option<String>, ClientError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_message(left).await {
            Ok((_, Outbound::Accepted(a))) => return Ok(Some(String::from_utf8_lossy(&a.token).trim().to_string())),
            Ok(_) => {}
            Err(ClientError::Timeout) => return Ok(None),
            Err(err) => return Err(err),
        }
    }
}

fn accepted_tokens(stream: &[Outbound]) -> Vec<String> {
    stream
        .iter()
        .filter_map(|m| match m {
            Outbound::Accepted(a) => Some(String::from_utf8_lossy(&a.token).trim().to_string()),
            _ => None,
        })
        .collect()
}

/// The whole scenario, run from a thread inside the hub namespace.
fn partition(lab: &Lab, dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut nodes = nodes(dir, lab);
    nodes.iter_mut().for_each(Node::start);
    let old = agreed_leader(&nodes).expect("a leader");
    let old_term = nodes[old].view().unwrap().term;
    let mut cut_off = runtime.block_on(login_to_leader(nodes[old].order_entry, "DEMO01", 0));
    runtime.block_on(cut_off.send(&order("P1", b'B', 1, 700_000, "0001"))).unwrap();
    let first = runtime.block_on(accepted_within(&mut cut_off, Duration::from_secs(5))).unwrap();
    assert_eq!(first.as_deref(), Some("P1"), "before the cut");
    lab.raft_link(nodes[old].id, false);
    runtime.block_on(cut_off.send(&order("P2", b'B', 1, 700_000, "0001"))).unwrap();
    let answer = runtime.block_on(accepted_within(&mut cut_off, NO_ANSWER_FOR));
    assert!(matches!(answer, Ok(None)), "the cut-off leader answered: {answer:?}");
    let others: Vec<usize> = (0..3).filter(|&n| n != old).collect();
    let leader = new_leader(&nodes, &others, old_term);
    let mut majority = runtime.block_on(login_to_leader(nodes[leader].order_entry, "DEMO02", 0));
    runtime.block_on(majority.send(&order("M1", b'S', 1, 800_000, "0341"))).unwrap();
    let taken = runtime.block_on(accepted_within(&mut majority, Duration::from_secs(5))).unwrap();
    assert_eq!(taken.as_deref(), Some("M1"), "the majority's leader");
    lab.raft_link(nodes[old].id, true);
    until_follower(&nodes, old);
    let closed = runtime.block_on(accepted_within(&mut cut_off, PATIENCE));
    assert!(closed.is_err(), "the old leader's session stayed open: {closed:?}");
    let (_, stream) = runtime.block_on(whole_stream(nodes[leader].order_entry, "DEMO01"));
    assert_eq!(accepted_tokens(&stream), ["P1"], "DEMO01's stream after the partition");
    let hash = converged(&nodes);
    for node in &mut nodes {
        assert_eq!(node.stop(), hash, "node {} stopped on another state", node.id);
        verify_replay(node, &hash);
    }
}

#[test]
fn a_cut_off_leader_acknowledges_nothing_and_the_majority_goes_on() {
    let lab = match Lab::new() {
        Ok(lab) => lab,
        Err(why) => {
            println!("skipped: network namespaces cannot be made here ({why})");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let hub = Netns { name: lab.hub.name.clone() };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                hub.enter_and_forget();
                partition(&lab, tmp.path());
            })
            .join()
            .unwrap();
    });
}
