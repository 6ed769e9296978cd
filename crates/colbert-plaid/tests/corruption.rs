#![allow(clippy::unwrap_used)]
//! A flipped bit anywhere in any index file gives INDEX_CORRUPT or a correct result (search
//! hits, decompressed embeddings, stored text and metadata), never a panic or a wrong answer.
mod common;
use colbert_plaid::*;
use common::*;

const DIM: usize = 16;

fn check(
    dir: &std::path::Path,
    q: &Embeddings,
    ids: &[String],
    base: &(Vec<Vec<Hit>>, Embeddings, Vec<Option<DocumentFields>>),
) -> &'static str {
    let idx = match PlaidIndex::open(dir) {
        Ok(i) => i,
        Err(e) => return e.code(),
    };
    let p = SearchParams {
        n_probe: Some(8),
        centroid_score_threshold: Some(f32::NEG_INFINITY),
        ..SearchParams::new(5)
    };
    match idx.search(q.view(), &p, None, &no_cancel()) {
        Ok(r) => assert_eq!(r, base.0),
        Err(e) => return e.code(),
    }
    match idx.reconstruct(ids) {
        Ok(r) => assert_eq!(r, base.1),
        Err(e) => return e.code(),
    }
    match idx.documents(ids) {
        Ok(r) => assert_eq!(r, base.2),
        Err(e) => return e.code(),
    }
    "OK"
}

/// (offset, length) of each section of a container file (see `format.rs`).
fn section_table(b: &[u8]) -> Vec<(usize, usize)> {
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    if b.len() < 64 || &b[..8] != b"CLBPLAID" {
        return Vec::new();
    }
    (0..u32_at(16))
        .map(|i| (u64_at(64 + 16 * i), u64_at(64 + 16 * i + 8)))
        .collect()
}

#[test]
fn flipped_bits_are_detected() {
    let t = TempDir::new("corrupt");
    let c = Corpus::new(41, 40, DIM, 3, 10);
    let idx = PlaidIndex::create(
        t.path(),
        IndexOptions {
            nbits: 2,
            num_centroids: Some(8),
            ..Default::default()
        },
        false,
    )
    .unwrap();
    for r in [0..30, 30..40] {
        let (ids, e) = c.slice(r);
        let mut w = idx.writer().unwrap();
        let fields: Vec<DocumentFields> = ids
            .iter()
            .map(|id| DocumentFields {
                text: Some(format!("text of {id}")),
                metadata: Some(format!(r#"{{"id":"{id}"}}"#)),
            })
            .collect();
        w.push_documents(ids, e.view(), Some(&fields)).unwrap();
        w.commit(&no_cancel(), &|_| {}).unwrap();
    }
    idx.delete(&c.ids[..3]).unwrap();
    drop(idx);
    let live: Vec<String> = c.ids[3..].to_vec();
    let q = c.queries(3, 4, 6);
    let base = {
        let idx = PlaidIndex::open(t.path()).unwrap();
        let p = SearchParams {
            n_probe: Some(8),
            centroid_score_threshold: Some(f32::NEG_INFINITY),
            ..SearchParams::new(5)
        };
        (
            idx.search(q.view(), &p, None, &no_cancel()).unwrap(),
            idx.reconstruct(&live).unwrap(),
            idx.documents(&live).unwrap(),
        )
    };
    let mut files: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.retain(|p| p.file_name().unwrap() != "LOCK");
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}"); // manifest, codebook, 2 segments, tombstones
    let mut rng = Rng::new(9);
    let mut outcomes = std::collections::BTreeMap::new();
    for f in &files {
        let orig = std::fs::read(f).unwrap();
        let n = orig.len();
        // Headers and the tail densely, the rest sampled, plus the first, middle and last
        // byte of every section of a segment (codes, residuals, stored norms, IVF, fields).
        let mut positions: Vec<usize> = (0..n.min(160)).chain(n.saturating_sub(48)..n).collect();
        positions.extend((0..120).map(|_| rng.below(n)));
        let sections = section_table(&orig);
        let is_segment = f.file_name().unwrap().to_string_lossy().starts_with("seg-");
        if is_segment {
            // Format 3: 14 sections, the stored inverse norms last (physically after the
            // residuals).
            assert_eq!(sections.len(), 14, "{}", f.display());
            for &(off, len) in &sections {
                if len > 0 {
                    positions.extend([off, off + len / 2, off + len - 1]);
                }
            }
        }
        positions.sort_unstable();
        positions.dedup();
        for pos in positions {
            let mut b = orig.clone();
            b[pos] ^= 1 << (pos % 8);
            std::fs::write(f, &b).unwrap();
            let code = check(t.path(), &q, &live, &base);
            assert!(
                code == "OK" || code == "INDEX_CORRUPT",
                "{}@{pos}: {code}",
                f.display()
            );
            if is_segment {
                let (off, len) = sections[13];
                if (off..off + len).contains(&pos) {
                    // A search reads the norms of every finalist: never silently used.
                    assert_eq!(code, "INDEX_CORRUPT", "{}@{pos} (norms)", f.display());
                }
            }
            *outcomes.entry(code).or_insert(0) += 1;
        }
        std::fs::write(f, &orig).unwrap();
        // Truncation is corruption too.
        std::fs::write(f, &orig[..n / 2]).unwrap();
        assert_eq!(check(t.path(), &q, &live, &base), "INDEX_CORRUPT");
        std::fs::write(f, &orig).unwrap();
    }
    assert_eq!(check(t.path(), &q, &live, &base), "OK");
    eprintln!("{outcomes:?}");
    assert!(
        outcomes.get("INDEX_CORRUPT").copied().unwrap_or(0)
            > outcomes.get("OK").copied().unwrap_or(0)
    );
}
