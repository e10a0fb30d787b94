//! Connections counted per key with a cap, each place given back when its
//! guard drops. Every listener of the exchange uses it: per source address
//! before login (one address that opens connections and never logs in
//! can take at most its share of a listener, never all of it), per
//! username after login (one user's heartbeating connections cannot hold
//! every slot of the TCP feed), per address on the admin endpoint.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

/// Connections per key, each key at most `max`.
#[derive(Debug)]
pub struct Capped<K: Hash + Eq + Copy> {
    max: usize,
    counts: Mutex<FxHashMap<K, usize>>,
}

/// One connection's place in a [`Capped`] table, given back on drop.
#[derive(Debug)]
pub struct Place<K: Hash + Eq + Copy> {
    table: Arc<Capped<K>>,
    key: K,
}

/// Connections counted per source address.
pub type PerAddress = Capped<IpAddr>;

impl<K: Hash + Eq + Copy> Capped<K> {
    /// At most `max` connections per key.
    pub fn new(max: usize) -> Arc<Capped<K>> {
        Arc::new(Capped { max, counts: Mutex::new(FxHashMap::default()) })
    }

    /// The cap of each key.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for one more connection of `key`; `None` at the cap.
    pub fn admit(self: &Arc<Self>, key: K) -> Option<Place<K>> {
        let mut counts = self.counts.lock();
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Place { table: Arc::clone(self), key })
    }

    /// Connections of `key` now.
    pub fn held(&self, key: K) -> usize {
        self.counts.lock().get(&key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq + Copy> Drop for Place<K> {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock();
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                // Only keys with connections stay in the table.
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_capped_and_places_come_back() {
        let table: Arc<PerAddress> = Capped::new(2);
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        let first = table.admit(a).unwrap();
        let _second = table.admit(a).unwrap();
        assert!(table.admit(a).is_none());
        let _other = table.admit(b).unwrap();
        drop(first);
        assert_eq!(table.held(a), 1);
        let _again = table.admit(a).unwrap();
        assert!(table.admit(a).is_none());
        assert_eq!(table.held(b), 1);
    }

    #[test]
    fn a_key_without_connections_leaves_the_table() {
        let table: Arc<PerAddress> = Capped::new(1);
        let a: IpAddr = [127, 0, 0, 2].into();
        drop(table.admit(a).unwrap());
        assert_eq!(table.held(a), 0);
        assert!(table.counts.lock().is_empty());
    }
}
