//! External string ids: each segment stores its ids (offsets + UTF-8 blob) and a sorted
//! `(FNV-1a 64 hash, local doc)` table, so `id → document` is a binary search per segment on
//! mapped data: nothing is loaded or merged at open.

/// FNV-1a, 64 bits: stable across platforms and versions (part of the file format).
pub(crate) fn id_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The id sections of a segment.
pub(crate) struct IdTable {
    pub offsets: Vec<u64>,
    pub blob: Vec<u8>,
    pub hashes: Vec<u64>,
    pub order: Vec<u32>,
}

pub(crate) fn build_id_table(ids: &[String]) -> IdTable {
    let mut offsets = Vec::with_capacity(ids.len() + 1);
    let mut blob = Vec::new();
    offsets.push(0u64);
    for id in ids {
        blob.extend_from_slice(id.as_bytes());
        offsets.push(blob.len() as u64);
    }
    let mut pairs: Vec<(u64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (id_hash(s), i as u32))
        .collect();
    pairs.sort_unstable();
    IdTable {
        offsets,
        blob,
        hashes: pairs.iter().map(|p| p.0).collect(),
        order: pairs.iter().map(|p| p.1).collect(),
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
        let t = build_id_table(&["b".into(), "a".into()]);
        assert_eq!(t.offsets, vec![0, 1, 2]);
        assert_eq!(t.blob, b"ba");
        assert!(t.hashes.windows(2).all(|w| w[0] <= w[1]));
    }
}
