//! The cluster on the admin endpoint ([`crate::admin`]), when the server
//! runs with `[cluster]`.
//!
//! | route | token | does |
//! |---|---|---|
//! | `GET /cluster` | no | this node's view: role, term, leader, commit and applied index, state hash, members |
//! | `POST /cluster/add` | yes | adds a member ([`AddMemberRequest`]); the leader only |
//! | `POST /cluster/remove/{id}` | yes | removes a member; the leader only |

use crate::admin::api::{AddMemberRequest, MembershipAnswer};
use crate::admin::{AdminState, Answer, refuse, to_answer};
use crate::cluster::Member;
use crate::cluster::node::ClusterNode;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn node(s: &AdminState) -> Result<&Arc<ClusterNode>, crate::admin::Refusal> {
    s.cluster.as_ref().ok_or_else(|| refuse(StatusCode::NOT_FOUND, "this server runs without [cluster]"))
}

pub(crate) async fn view(State(s): State<Arc<AdminState>>) -> Answer {
    let node = node(&s)?;
    let applied = node.applied();
    // Read on the engine thread between two batches: the hash is the
    // state after exactly the applied index shown.
    let (hash, index) = s.inspect(move |engine| (engine.state_hash(), applied.load(Ordering::Acquire))).await?;
    to_answer(&node.view(hash, index))
}

pub(crate) async fn add(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Json(body): Json<AddMemberRequest>,
) -> Answer {
    s.authorize(&headers)?;
    let node = node(&s)?;
    let member = Member { raft: body.raft, order_entry: body.order_entry, admin: body.admin };
    node.add_member(body.id, member).await.map_err(|e| refuse(StatusCode::CONFLICT, e))?;
    to_answer(&MembershipAnswer { voters: node.voters().into_iter().collect() })
}

pub(crate) async fn remove(State(s): State<Arc<AdminState>>, headers: HeaderMap, Path(id): Path<u64>) -> Answer {
    s.authorize(&headers)?;
    let node = node(&s)?;
    node.remove_member(id).await.map_err(|e| refuse(StatusCode::CONFLICT, e))?;
    to_answer(&MembershipAnswer { voters: node.voters().into_iter().collect() })
}
