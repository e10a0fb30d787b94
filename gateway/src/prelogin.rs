//! Connections not yet logged in, counted per source address: one address
//! that opens connections and never logs in (each may wait out the login
//! timeout) can take at most its share of the listener's
//! `connections_max`, never all of it, so brokers on other addresses can
//! still log in.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Per source address, the connections accepted and not yet past login.
#[derive(Debug)]
pub struct PreLogin {
    max: usize,
    counts: Mutex<FxHashMap<IpAddr, usize>>,
}

/// One connection's place in [`PreLogin`], given back when dropped (at
/// the login's outcome, or when the connection ends before it).
#[derive(Debug)]
pub struct PreLoginGuard {
    table: Arc<PreLogin>,
    address: IpAddr,
}

impl PreLogin {
    /// At most `max` connections per address before login.
    pub fn new(max: usize) -> Arc<PreLogin> {
        Arc::new(PreLogin { max, counts: Mutex::new(FxHashMap::default()) })
    }

    /// A place for one more connection from `address`; `None` when the
    /// address already has `max` connections waiting to log in.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<PreLoginGuard> {
        let mut counts = self.counts.lock();
        let count = counts.entry(address).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PreLoginGuard { table: Arc::clone(self), address })
    }

    /// Connections from `address` waiting to log in now.
    pub fn waiting(&self, address: IpAddr) -> usize {
        self.counts.lock().get(&address).copied().unwrap_or(0)
    }
}

impl Drop for PreLoginGuard {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock();
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                // The table holds only addresses with connections waiting.
                counts.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_gives_places_back() {
        let table = PreLogin::new(2);
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        let first = table.admit(a).unwrap();
        let _second = table.admit(a).unwrap();
        assert!(table.admit(a).is_none());
        let _other = table.admit(b).unwrap();
        drop(first);
        assert_eq!(table.waiting(a), 1);
        let _again = table.admit(a).unwrap();
        assert!(table.admit(a).is_none());
    }
}
