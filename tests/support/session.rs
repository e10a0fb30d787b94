//! Logging in to the order-entry or drop-copy port with the OUCH client:
//! the one login helper of the integration tests.

use carbonx_gateway::client::{Client, Received};
use std::net::SocketAddr;
use std::time::Duration;

/// Logs in as `user` with `password`, asking for the stream from `from`
/// (1 = the whole day, 0 = only new messages): the client and the
/// session name, or the reject reason. Panics on anything else.
pub async fn try_login(addr: SocketAddr, user: &str, password: &str, from: u64) -> Result<(Client, [u8; 10]), u8> {
    let mut client = Client::connect(addr).await.unwrap();
    match client.login(user, password, "", from).await.unwrap() {
        Received::LoginAccepted { session, .. } => Ok((client, session)),
        Received::LoginRejected(reason) => Err(reason),
        other => panic!("{user}: {other:?}"),
    }
}

/// Logs in as `user` (password `demo`) from `from`; panics when refused.
pub async fn login(addr: SocketAddr, user: &str, from: u64) -> Client {
    match try_login(addr, user, "demo", from).await {
        Ok((client, _)) => client,
        Err(reason) => panic!("{user}: login rejected {:?}", char::from(reason)),
    }
}

/// As [`login`], retrying while the username is still held by a closing
/// connection (Login Rejected `S`), for up to about a second.
pub async fn login_again(addr: SocketAddr, user: &str, from: u64) -> Client {
    for _ in 0..50 {
        match try_login(addr, user, "demo", from).await {
            Ok((client, _)) => return client,
            Err(b'S') => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(reason) => panic!("{user}: login rejected {:?}", char::from(reason)),
        }
    }
    panic!("{user} could not log in again");
}
