//! Shared helpers of the root crate's integration tests (`mod support;`):
//! independent decoders for what our server puts on the wire.
//!
//! - [`admin`]: the `carbonx admin` binary against a test server;
//! - [`books`]: the engine's and a feed consumer's resting orders, comparable;
//! - [`cluster`]: `carbonx serve` nodes of a cluster as processes (in a
//!   network namespace or not), their `/cluster` views, the leader, logins
//!   that follow it, and the final checks (convergence, replay);
//! - [`disk`]: a small tmpfs that fills up under load;
//! - [`flow`]: seeded users trading until their connection dies, and the
//!   check that their streams survive a crash or failover;
//! - [`capture`]: a recording TCP proxy (std threads) between a client and
//!   the server;
//! - [`hostile`]: the hostile-client tests' server, operator client,
//!   sockets from a chosen loopback address and `/metrics` reads;
//! - [`netns`]: network namespaces a test makes for itself;
//! - [`pcap`]: writes a recorded conversation as a classic pcap file
//!   (Ethernet/IPv4/TCP, handshake, real checksums);
//! - [`python`]: a script of the test virtual environment over some text;
//! - [`session`]: the login helper of every test that trades through the
//!   OUCH client;
//! - [`tshark`]: runs Wireshark's tshark on it and fails on any Error
//!   expert info or a frame that is not an OUCH 4.2 message of PROTOCOL §3-§4.
//!
//! A real session checked end to end:
//!
//! ```ignore
//! let proxy = support::capture::CaptureProxy::start(server_addr)?;
//! // ... connect the client to proxy.addr(), log in, trade, log out ...
//! let chunks = proxy.finish();
//! let path = dir.join("session.pcap");
//! support::pcap::write_soup_pcap(&path, 7001, &support::capture::coalesce(&chunks))?;
//! let d = support::tshark::assert_tshark_clean(&path, 7001);
//! let acc = d.ouch_of_type('A').next().unwrap();
//! assert_eq!(acc.ouch_num("ouch.price"), 746_300);
//! ```
//!
//! tshark and the Python client's virtual environment come from
//! `scripts/test.sh`; tests that need them fail (not skip) without them.
#![allow(dead_code)]

pub mod admin;
pub mod books;
pub mod capture;
pub mod cluster;
pub mod disk;
pub mod flow;
pub mod hostile;
pub mod netns;
pub mod pcap;
pub mod python;
pub mod session;
pub mod tshark;
