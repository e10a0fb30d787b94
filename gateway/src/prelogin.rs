//! Connections not yet logged in, counted per source address: one address
//! that opens connections and never logs in (each may wait out the login
//! timeout) can take at most its share of the listener's
//! `connections_max`, never all of it, so brokers on other addresses can
//! still log in. The table is [`carbonx_soup::capped`], shared with the
//! feed's listeners and the admin endpoint.

use std::net::IpAddr;

/// Per source address, the connections accepted and not yet past login.
pub type PreLogin = carbonx_soup::capped::PerAddress;

/// One connection's place in [`PreLogin`], given back when dropped (at
/// the login's outcome, or when the connection ends before it).
pub type PreLoginGuard = carbonx_soup::capped::Place<IpAddr>;
