//! Seeded order flow for the crash and failover tests: users that trade
//! until their connection dies, and the check that nothing they received
//! was lost or changed when they log in again.

use carbonx_gateway::client::{Client, ClientError};
use carbonx_gateway::ouch::{CancelOrder, EnterOrder, Inbound, Outbound};
use carbonx_soup::packet::alpha;
use carbonx_testkit::Rng;
use std::time::Duration;

/// Whose orders and which round: tokens are `{tag}{round:02}N{n}`, the
/// accounts the demo user `user_index + 1` trades (RULES §13).
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    /// The tokens' first letter (one per test, so rounds never collide).
    pub tag: char,
    /// The user's index: DEMO01 is 0.
    pub user_index: usize,
    /// The round (kill) number.
    pub round: usize,
    /// Most orders and cancels sent.
    pub messages: u32,
}

/// A limit order for CEA.
pub fn order(token: &str, side: u8, shares: u32, price: u32, firm: &str) -> Inbound {
    Inbound::Enter(EnterOrder::limit(token, side, shares, "CEA", price, firm))
}

/// Sends seeded orders and cancels until the connection dies (or
/// `flow.messages` are sent), reading every answer; returns `received`
/// followed by everything that arrived, each numbered one after the last.
pub async fn trade(mut client: Client, flow: Flow, seed: u64, mut received: Vec<Outbound>) -> Vec<Outbound> {
    let mut rng = Rng::new(seed);
    let first_account = flow.user_index as u32 * 340 + 1;
    let token = |n: u64| format!("{}{:02}N{n}", flow.tag, flow.round);
    for n in 0..u64::from(flow.messages) {
        let message = if n > 0 && rng.below(5) == 0 {
            Inbound::Cancel(CancelOrder { token: alpha(&token(rng.below(n))).unwrap(), shares: 0 })
        } else {
            let side = if rng.below(2) == 0 { b'B' } else { b'S' };
            let price = 746_300 + (rng.below(7) as u32) * 100 - 300;
            let firm = format!("{:04}", first_account + rng.below(5) as u32);
            order(&token(n), side, 1 + rng.below(30) as u32, price, &firm)
        };
        if client.send(&message).await.is_err() || !take_answers(&mut client, &mut received, ANSWER_WAIT).await {
            break;
        }
    }
    received
}

/// How long [`trade`] waits for more answers before it sends again.
const ANSWER_WAIT: Duration = Duration::from_millis(2);

/// Reads what has arrived until `wait` passes without a message, checking
/// each is numbered one after the last; false once the connection is gone.
pub async fn take_answers(client: &mut Client, received: &mut Vec<Outbound>, wait: Duration) -> bool {
    loop {
        match client.next_message(wait).await {
            Ok((seq, message)) => {
                assert_eq!(seq, received.len() as u64 + 1, "gap or duplicate in the live stream");
                received.push(message);
            }
            Err(ClientError::Timeout) => return true,
            Err(_) => return false,
        }
    }
}

/// `stream` (a user's stream after a crash or failover) begins with
/// exactly what the user had received: same numbers, same bytes.
pub fn check_prefix(user: &str, received: &[Outbound], stream: &[Outbound]) {
    assert!(
        stream.len() >= received.len(),
        "{user}: {} messages received, only {} after",
        received.len(),
        stream.len()
    );
    for (i, (a, s)) in received.iter().zip(stream).enumerate() {
        assert_eq!(a, s, "{user}: message {} changed", i + 1);
    }
}
