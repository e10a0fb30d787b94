//! A storage fault on one node of a three-node cluster (issue 21 with the
//! fail-stop rule of issue 19): node 1's data directory is a 1 MiB tmpfs
//! that fills up while four users trade. Node 1 stops on its own with a
//! `FAIL-STOP` line naming the full disk, whatever its role; the other two
//! are a majority and go on: a leader among them takes orders, every
//! message a user received is in its stream there, and the two converge on
//! one state that `carbonx replay --verify` reproduces from each of their
//! Raft logs. Where a tmpfs cannot be mounted (not root), the test says so
//! and passes without running.

mod support;

use carbonx_gateway::ouch::Outbound;
use carbonx_testkit::Rng;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::cluster::{
    Node, PATIENCE, agreed_leader, converged, login_to_leader, three_nodes, verify_replay, whole_stream,
};
use support::disk::SmallDisk;
use support::flow::{Flow, check_prefix, trade};

const USERS: [&str; 4] = ["DEMO01", "DEMO02", "DEMO03", "DEMO04"];
/// Rounds of trading on the current leader at most, waiting for the disk
/// to fill (each round's users send up to 5,000 messages each).
const ROUNDS_MAX: usize = 20;

/// Node 1's exit status and log once it has stopped on its own.
fn stopped_on_its_own(node: &mut Node) -> Option<(std::process::ExitStatus, String)> {
    let status = node.child.as_mut()?.try_wait().unwrap()?;
    node.child = None;
    Some((status, std::fs::read_to_string(&node.log).unwrap_or_default()))
}

#[test]
fn a_full_disk_stops_one_node_and_the_majority_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount_or_skip(&tmp.path().join("small"), "1m") else { return };
    let mut nodes = three_nodes(tmp.path(), None);
    nodes[0].data = disk.dir.join("node1");
    nodes.iter_mut().for_each(Node::start);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rng = Rng::new(carbonx_testkit::seed("cluster faults", 0xD15C_F011));
    let mut received: HashMap<&str, Vec<Outbound>> = USERS.iter().map(|u| (*u, Vec::new())).collect();
    let started = Instant::now();
    let mut failed = None;
    for round in 0..ROUNDS_MAX {
        let leader = agreed_leader(&nodes).expect("a leader");
        let addr = nodes[leader].order_entry;
        let tasks: Vec<_> = USERS
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let (so_far, seed) = (received[user].clone(), rng.next_u64());
                let flow = Flow { tag: 'D', user_index: i, round, messages: 5_000 };
                runtime.spawn(async move {
                    let (client, stream) = whole_stream(addr, user).await;
                    check_prefix(user, &so_far, &stream);
                    trade(client, flow, seed, stream).await
                })
            })
            .collect();
        for (user, task) in USERS.iter().zip(tasks) {
            received.insert(user, runtime.block_on(task).unwrap());
        }
        failed = stopped_on_its_own(&mut nodes[0]);
        if failed.is_some() || started.elapsed() > PATIENCE * 4 {
            break;
        }
    }
    let (status, log) = failed.expect("node 1's disk never filled");
    assert!(!status.success(), "node 1 exited with success after its disk filled");
    assert!(log.contains("FAIL-STOP") && log.contains("No space left on device"), "node 1's log:\n{log}");
    let survivors = &mut nodes[1..];
    let leader = agreed_leader(survivors).expect("the majority elects a leader");
    let mut client = runtime.block_on(login_to_leader(survivors[leader].order_entry, "DEMO05", 0));
    runtime.block_on(client.send(&support::flow::order("AFTER", b'B', 1, 700_000, "1361"))).unwrap();
    let accepted = runtime.block_on(async {
        loop {
            match client.next_message(Duration::from_secs(5)).await {
                Ok((_, Outbound::Accepted(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    });
    assert!(accepted, "the majority's leader did not accept an order");
    for user in USERS {
        let (_, stream) = runtime.block_on(whole_stream(survivors[leader].order_entry, user));
        check_prefix(user, &received[user], &stream);
    }
    let hash = converged(survivors);
    for node in survivors {
        assert_eq!(node.stop(), hash, "node {} stopped on another state", node.id);
        verify_replay(node, &hash);
    }
}
