//! External string ids: each segment stores its ids (offsets + UTF-8 blob) and a sorted
//! `(FNV-1a 64 hash, local doc)` table, so `id → document` is a binary search per segment on
//! mapped data: nothing is loaded or merged at open.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

/// FNV-1a, 64 bits: stable across platforms and versions (part of the file format).
pub(crate) fn id_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Ids of the documents a transaction adds, in push order, kept compactly: one UTF-8 blob with
/// end offsets, and a `hash → first row` map for the duplicate check. About 40 bytes per
/// document besides the id's text, where a `Vec<String>` plus a `HashSet<String>` copy took
/// about 130 (it is the largest per-document cost of a build).
pub(crate) struct StagedIds {
    /// `offsets[i]..offsets[i + 1]` is id `i` in `blob`; starts with 0.
    offsets: Vec<u64>,
    blob: Vec<u8>,
    first: HashMap<u64, u32>,
    /// Ids whose hash equals that of an earlier, different id (FNV-1a collisions; checked
    /// here by value).
    collided: HashSet<String>,
}

impl Default for StagedIds {
    fn default() -> Self {
        StagedIds {
            offsets: vec![0],
            blob: Vec::new(),
            first: HashMap::new(),
            collided: HashSet::new(),
        }
    }
}

impl StagedIds {
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Id `i` (`i < len()`).
    pub fn get(&self, i: usize) -> &str {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        // Only whole `&str`s are appended, so every range is valid UTF-8.
        std::str::from_utf8(&self.blob[a..b]).unwrap_or_default()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.contains_hashed(id, id_hash(id))
    }

    fn contains_hashed(&self, id: &str, h: u64) -> bool {
        match self.first.get(&h) {
            None => false,
            Some(&i) => self.get(i as usize) == id || self.collided.contains(id),
        }
    }

    /// Appends `id`; the caller has checked that it is not staged yet.
    pub fn push(&mut self, id: &str) {
        self.push_hashed(id, id_hash(id));
    }

    fn push_hashed(&mut self, id: &str, h: u64) {
        let row = self.len() as u32;
        match self.first.entry(h) {
            Entry::Occupied(_) => {
                self.collided.insert(id.to_string());
            }
            Entry::Vacant(v) => {
                v.insert(row);
            }
        }
        self.blob.extend_from_slice(id.as_bytes());
        self.offsets.push(self.blob.len() as u64);
    }

    pub fn clear(&mut self) {
        *self = StagedIds::default();
    }
}

/// The id sections of a segment besides the offsets and blob of [`StagedIds`].
pub(crate) struct IdTable {
    pub hashes: Vec<u64>,
    pub order: Vec<u32>,
}

impl StagedIds {
    /// Offsets (`len() + 1`, from 0) and blob, as a segment stores them.
    pub fn sections(&self) -> (&[u64], &[u8]) {
        (&self.offsets, &self.blob)
    }

    /// The `(hash, row)` pairs sorted by hash, as a segment stores them.
    pub fn table(&self) -> IdTable {
        let mut pairs: Vec<(u64, u32)> = (0..self.len())
            .map(|i| (id_hash(self.get(i)), i as u32))
            .collect();
        pairs.sort_unstable();
        IdTable {
            hashes: pairs.iter().map(|p| p.0).collect(),
            order: pairs.iter().map(|p| p.1).collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(id_hash(""), 0xcbf29ce484222325);
        assert_eq!(id_hash("a"), 0xaf63dc4c8601ec8c);
        let mut ids = StagedIds::default();
        ids.push("b");
        ids.push("a");
        assert_eq!(ids.sections(), (&[0u64, 1, 2][..], &b"ba"[..]));
        let t = ids.table();
        assert!(t.hashes.windows(2).all(|w| w[0] <= w[1]));
        let mut by_row = t.order.clone();
        by_row.sort_unstable();
        assert_eq!(by_row, vec![0, 1]);
        assert_eq!(
            t.hashes[t.order.iter().position(|&r| r == 1).unwrap()],
            id_hash("a")
        );
    }

    #[test]
    fn staged_ids_find_duplicates_even_on_hash_collisions() {
        let mut ids = StagedIds::default();
        assert!(ids.is_empty() && !ids.contains("x"));
        ids.push("doc-1");
        ids.push("é");
        assert!(ids.contains("doc-1") && ids.contains("é") && !ids.contains("doc-2"));
        assert_eq!((ids.len(), ids.get(1)), (2, "é"));
        // Force a collision: "other" stored under the hash of "doc-1".
        let h = id_hash("doc-1");
        assert!(!ids.contains_hashed("other", h));
        ids.push_hashed("other", h);
        assert!(ids.contains_hashed("other", h) && ids.contains_hashed("doc-1", h));
        assert!(!ids.contains_hashed("third", h));
        assert_eq!(ids.get(2), "other");
        ids.clear();
        assert!(ids.is_empty() && !ids.contains("doc-1"));
    }
}
