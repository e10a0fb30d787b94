//! carbonx-gateway: the brokers' order-entry gateway (SoupBinTCP 3.0 + OUCH 4.2).
//!
//! # Layout
//! Filled in by the gateway issue: pure codecs first, then the tokio server.
