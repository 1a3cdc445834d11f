//! What an isolate remembers between requests, for a bounded time: an upstream's challenge to
//! anonymous clients (its `/v2/` answer) and anonymous token answers per scope. Each saves an
//! upstream round trip per pull; neither is a credential of anyone's (an anonymous token
//! grants what any anonymous client would get for the same request).

/// How long an upstream's challenge is taken as it was: the realm and service of a registry
/// change with a deployment of it, rarely.
pub const CHALLENGE_MS: f64 = 10.0 * 60.0 * 1000.0;

/// A small map whose entries expire; when full, the entry that expires first makes room.
#[derive(Debug)]
pub struct Memo<V> {
    entries: Vec<(String, V, f64)>,
    capacity: usize,
}

impl<V: Clone> Memo<V> {
    pub const fn new(capacity: usize) -> Self {
        Memo {
            entries: Vec::new(),
            capacity,
        }
    }

    /// The value under `key` if it has not expired at `now` (ms).
    pub fn get(&mut self, key: &str, now: f64) -> Option<V> {
        self.entries.retain(|(_, _, until)| *until > now);
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v.clone())
    }

    /// Keeps `value` under `key` until `until` (ms).
    pub fn put(&mut self, key: &str, value: V, until: f64) {
        self.entries.retain(|(k, _, _)| k != key);
        if self.entries.len() >= self.capacity {
            if let Some(i) = (0..self.entries.len())
                .min_by(|a, b| self.entries[*a].2.total_cmp(&self.entries[*b].2))
            {
                self.entries.swap_remove(i);
            }
        }
        if self.capacity > 0 {
            self.entries.push((key.to_string(), value, until));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let mut m = Memo::new(4);
        m.put("a", 1, 100.0);
        assert_eq!(m.get("a", 99.0), Some(1));
        assert_eq!(m.get("a", 100.0), None);
        assert_eq!(m.get("b", 0.0), None);
    }

    #[test]
    fn a_full_memo_drops_what_expires_first() {
        let mut m = Memo::new(2);
        m.put("a", 1, 300.0);
        m.put("b", 2, 200.0);
        m.put("c", 3, 400.0);
        assert_eq!(m.get("b", 0.0), None);
        assert_eq!(m.get("a", 0.0), Some(1));
        assert_eq!(m.get("c", 0.0), Some(3));
        m.put("a", 9, 500.0);
        assert_eq!(m.get("a", 0.0), Some(9));
        assert_eq!(m.entries.len(), 2);
    }
}
