//! `[cluster]`: which node this is, the members, and Raft's timeouts.

use super::{Member, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// `[cluster]`: present, the server runs as one node of a Raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id: one of the members'.
    pub node: NodeId,
    /// How often the leader sends heartbeats (milliseconds).
    #[serde(default = "heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for `election_timeout_max_ms` (the
    /// leader's lease: openraft refuses votes until it has passed) plus a
    /// random time between these two (milliseconds) starts an election:
    /// with the defaults, 600 to 800 ms after the leader's last heartbeat.
    #[serde(default = "election_timeout_min_ms")]
    pub election_timeout_min_ms: u64,
    /// See `election_timeout_min_ms`.
    #[serde(default = "election_timeout_max_ms")]
    pub election_timeout_max_ms: u64,
    /// A node started to be added to a running cluster (`carbonx admin
    /// cluster add`), or one whose data directory was lost: it waits to be
    /// added instead of founding a cluster of its own from `members`.
    #[serde(default)]
    pub join: bool,
    /// Every member, this node included (`[[cluster.members]]`).
    pub members: Vec<MemberConfig>,
}

/// One `[[cluster.members]]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// The member's node id.
    pub id: NodeId,
    /// Where it serves Raft's RPCs.
    pub raft: SocketAddr,
    /// Where it takes order-entry logins (when it leads).
    pub order_entry: SocketAddr,
    /// Its admin endpoint.
    pub admin: SocketAddr,
}

fn heartbeat_ms() -> u64 {
    50
}
fn election_timeout_min_ms() -> u64 {
    200
}
fn election_timeout_max_ms() -> u64 {
    400
}

impl ClusterConfig {
    /// Checks what openraft would otherwise refuse at start, or worse, run.
    ///
    /// # Errors
    /// What is wrong, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let mut ids: Vec<NodeId> = self.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("[[cluster.members]]: two members share an id".into());
        }
        if !ids.contains(&self.node) {
            return Err(format!("[cluster] node = {}: not among [[cluster.members]]", self.node));
        }
        if self.heartbeat_ms == 0 || self.election_timeout_min_ms <= self.heartbeat_ms {
            return Err("[cluster] heartbeat_ms must be above 0 and below election_timeout_min_ms".into());
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err("[cluster] election_timeout_max_ms must be above election_timeout_min_ms".into());
        }
        Ok(())
    }

    /// This node's own member table.
    pub fn me(&self) -> Option<&MemberConfig> {
        self.members.iter().find(|m| m.id == self.node)
    }

    /// The members as Raft's initial membership.
    pub fn membership(&self) -> BTreeMap<NodeId, Member> {
        self.members.iter().map(|m| (m.id, m.to_member())).collect()
    }

    /// Raft's settings: the timeouts above; snapshots only when asked
    /// (the log is the journal: nothing is purged behind the operator's back).
    pub fn raft_config(&self) -> openraft::Config {
        openraft::Config {
            cluster_name: "carbonx".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            // Snapshots are built at each roll (the day's start), and the
            // log is purged up to them.
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 0,
            ..openraft::Config::default()
        }
    }
}

impl MemberConfig {
    /// As Raft stores it.
    pub fn to_member(&self) -> Member {
        Member { raft: self.raft.to_string(), order_entry: self.order_entry.to_string(), admin: self.admin.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ClusterConfig {
        let member = |id: u64| MemberConfig {
            id,
            raft: format!("127.0.0.1:{}", 7011 + 100 * (id - 1)).parse().unwrap(),
            order_entry: format!("127.0.0.1:{}", 7001 + 100 * (id - 1)).parse().unwrap(),
            admin: format!("127.0.0.1:{}", 7010 + 100 * (id - 1)).parse().unwrap(),
        };
        ClusterConfig {
            node: 2,
            heartbeat_ms: 50,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
            join: false,
            members: (1..=3).map(member).collect(),
        }
    }

    #[test]
    fn a_good_cluster_validates_and_names_its_members() {
        let config = three();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.me().map(|m| m.order_entry.port()), Some(7101));
        assert_eq!(config.membership().keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(config.raft_config().validate().is_ok());
    }

    #[test]
    fn bad_clusters_are_refused_naming_the_key() {
        let mut stranger = three();
        stranger.node = 9;
        assert!(stranger.validate().unwrap_err().contains("node = 9"));
        let mut twins = three();
        twins.members[1].id = 1;
        assert!(twins.validate().unwrap_err().contains("share an id"));
        let mut slow_heart = three();
        slow_heart.heartbeat_ms = 200;
        assert!(slow_heart.validate().unwrap_err().contains("heartbeat_ms"));
        let mut window = three();
        window.election_timeout_max_ms = 200;
        assert!(window.validate().unwrap_err().contains("election_timeout_max_ms"));
    }
}
