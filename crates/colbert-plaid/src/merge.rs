//! Segment merging, so that many small transactions do not leave many small segments.
//!
//! Every commit that adds documents writes one segment, and every segment costs each search a
//! probe of its IVF, each id lookup a binary search and each open a file. After a commit, the
//! newest segments are merged like a binary counter: while the segment before the newest holds
//! at most twice the tokens of the newest, the two become one. Segment sizes then more than
//! double from newest to oldest, so an index of `N` tokens has at most about `log2(N)`
//! segments, and each token is copied `O(log N)` times over any sequence of adds.
//!
//! A merge is part of the commit's transaction: the merged segment is a new file, the manifest
//! lists it instead of its sources, and the sources are deleted once unreferenced. Documents
//! keep their numbers (the sources are consecutive), deleted documents stay deleted (their
//! tombstones are by number; `rebuild` is what drops them), and nothing is re-encoded: codes
//! and packed residuals are copied after their checksums are verified, so corruption in a
//! source fails the commit instead of being copied under a fresh checksum.

use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{PlaidError, Result};
use crate::ids::StagedIds;
use crate::manifest::SegmentMeta;
use crate::segment::{Codes, Segment, SegmentWriter, StagedFields};
use crate::storage::Spill;

/// Tokens copied per step (cancellation is polled between steps).
const COPY_TOKENS: usize = 1 << 16;

/// How many of the newest segments (with these token counts, oldest first) to merge into one:
/// 0, or at least 2.
pub(crate) fn tail_to_merge(tokens: &[u64]) -> usize {
    let Some(&newest) = tokens.last() else {
        return 0;
    };
    let (mut merged, mut take) = (newest, 1);
    while take < tokens.len() && tokens[tokens.len() - 1 - take] <= merged.saturating_mul(2) {
        merged += tokens[tokens.len() - 1 - take];
        take += 1;
    }
    if take >= 2 {
        take
    } else {
        0
    }
}

/// Writes one segment holding the documents of `sources` (consecutive, oldest first), with
/// an IVF of `num_centroids` lists. The new file's path is pushed to `created` as soon as it
/// exists, so the caller's transaction deletes it on any error.
pub(crate) fn merge_segments(
    dir: &Path,
    generation: u64,
    sources: &[&Segment],
    num_centroids: usize,
    row_bytes: usize,
    created: &mut Vec<PathBuf>,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<SegmentMeta> {
    let Some(first) = sources.first() else {
        return Err(PlaidError::Internal("nothing to merge".into()));
    };
    let mut doclens = Vec::new();
    let mut ids = StagedIds::default();
    let mut next = first.meta.doc_start;
    for s in sources {
        if s.meta.doc_start != next {
            return Err(PlaidError::Internal(
                "merged segments are not consecutive".into(),
            ));
        }
        next += s.meta.n_docs;
        doclens.extend(s.doc_offsets()?.windows(2).map(|w| (w[1] - w[0]) as u32));
        for l in 0..s.meta.n_docs {
            ids.push(s.id(l));
        }
    }
    let mut out = SegmentWriter::create(
        dir,
        generation,
        first.meta.doc_start,
        &doclens,
        &ids,
        num_centroids,
        row_bytes,
    )?;
    created.push(out.path().to_path_buf());
    drop(ids);
    // Codes and residuals, verified, then copied (codes widened to u32 for the writer, which
    // stores them as u16 or u32 by `num_centroids`).
    let mut at = 0u64;
    let mut codes: Vec<u32> = Vec::with_capacity(COPY_TOKENS);
    for s in sources {
        let nt = s.meta.n_tokens as usize;
        let mut t0 = 0;
        while t0 < nt {
            if cancel() {
                return Err(PlaidError::Aborted);
            }
            let t1 = (t0 + COPY_TOKENS).min(nt);
            s.check_codes(t0, t1)?;
            s.check_residuals(t0, t1)?;
            codes.clear();
            match s.codes()? {
                Codes::U16(c) => {
                    codes.extend(c.get(t0..t1).unwrap_or(&[]).iter().map(|&v| v as u32))
                }
                Codes::U32(c) => codes.extend_from_slice(c.get(t0..t1).unwrap_or(&[])),
            }
            let residuals = s.residuals().get(t0 * row_bytes..t1 * row_bytes);
            match residuals {
                Some(r)
                    if codes.len() == t1 - t0
                        && codes.iter().all(|&c| (c as usize) < num_centroids) =>
                {
                    out.write_tokens(at + t0 as u64, &codes, r)?
                }
                _ => {
                    return Err(PlaidError::corrupt(format!(
                        "{}: code or residual out of range",
                        s.meta.file.name
                    )))
                }
            }
            t0 = t1;
        }
        at += nt as u64;
    }
    // Stored texts and metadata, staged through a spill file like a writer's.
    let mut lens: Vec<(u32, u32)> = Vec::with_capacity(doclens.len());
    let mut spill: Option<Spill> = None;
    for s in sources {
        for l in 0..s.meta.n_docs {
            let (t, m) = (s.text(l)?.as_bytes(), s.metadata(l)?.as_bytes());
            if spill.is_none() && !(t.is_empty() && m.is_empty()) {
                spill = Some(Spill::create(dir, generation)?);
            }
            if let Some(sp) = spill.as_mut() {
                for b in [t, m] {
                    sp.out
                        .write_all(b)
                        .map_err(|e| PlaidError::io("writing", &sp.path, e))?;
                }
                sp.rows += t.len() + m.len();
            }
            lens.push((t.len() as u32, m.len() as u32));
        }
    }
    let map: Option<Mmap> = match spill.as_mut() {
        Some(sp) if sp.rows > 0 => {
            sp.out
                .flush()
                .map_err(|e| PlaidError::io("writing", &sp.path, e))?;
            // SAFETY: the spill file is private to this transaction (unique name, created
            // with create_new, removed on drop) and is not written while mapped.
            Some(
                unsafe { Mmap::map(sp.out.get_ref()) }
                    .map_err(|e| PlaidError::io("mapping", &sp.path, e))?,
            )
        }
        _ => None,
    };
    if cancel() {
        return Err(PlaidError::Aborted);
    }
    out.finish(&StagedFields {
        lens: &lens,
        bytes: map.as_deref().unwrap_or(&[]),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::index::{IndexOptions, PlaidIndex};
    use crate::rng::Rng;
    use crate::writer::DocumentFields;
    use colbert_embeddings::Embeddings;

    /// `n` documents of 3–12 random unit tokens (dim 16) with ids `{prefix}{i}`; every third
    /// one has stored text and metadata.
    fn docs(
        rng: &mut Rng,
        prefix: &str,
        n: usize,
    ) -> (Vec<String>, Embeddings, Vec<DocumentFields>) {
        let items: Vec<Vec<f32>> = (0..n)
            .map(|_| {
                let t = 3 + rng.below(10);
                let mut v: Vec<f32> = (0..t * 16).map(|_| rng.gauss()).collect();
                colbert_embeddings::normalize_rows(16, &mut v);
                v
            })
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        let fields = ids
            .iter()
            .enumerate()
            .map(|(i, id)| DocumentFields {
                text: (i % 3 == 0).then(|| format!("text of {id}")),
                metadata: (i % 3 == 0).then(|| format!(r#"{{"n":{i}}}"#)),
            })
            .collect();
        (ids, Embeddings::from_items(16, items), fields)
    }

    /// The merged segment is the concatenation of its sources: same ids, token offsets, codes,
    /// residuals and stored fields, and each IVF list is the sources' lists end to end.
    #[test]
    fn merged_segment_concatenates_its_sources() {
        let dir = std::env::temp_dir().join(format!("colbert-merge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let opts = IndexOptions {
            num_centroids: Some(16),
            nbits: 2,
            ..Default::default()
        };
        let idx = PlaidIndex::create(&dir, opts, false).unwrap();
        let mut rng = Rng::new(3);
        // 200 documents, then 5: too different in size to merge.
        for (prefix, n) in [("a", 200), ("b", 5)] {
            let (ids, e, f) = docs(&mut rng, prefix, n);
            let mut w = idx.writer().unwrap();
            w.push_documents(ids, e.view(), Some(&f)).unwrap();
            let info = w.commit(&|| false, &|_| {}).unwrap();
            assert_eq!(info.merged_segments, 0);
        }
        let snap = idx.snapshot().unwrap();
        let cb = snap.codebook.as_ref().unwrap();
        let sources: Vec<&Segment> = snap.segments.iter().collect();
        assert_eq!(sources.len(), 2);
        let mut created = Vec::new();
        let meta = merge_segments(
            &dir,
            99,
            &sources,
            cb.k,
            cb.codec.row_bytes(),
            &mut created,
            &|| false,
        )
        .unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!((meta.doc_start, meta.n_docs), (0, 205));
        assert_eq!(
            meta.n_tokens,
            sources.iter().map(|s| s.meta.n_tokens).sum::<u64>()
        );
        let merged = Segment::open(&dir, &meta, cb.codec.row_bytes()).unwrap();
        let rb = cb.codec.row_bytes();
        let code = |s: &Segment, t: usize| match s.codes().unwrap() {
            Codes::U16(c) => c[t] as u32,
            Codes::U32(c) => c[t],
        };
        let mut local = 0u32;
        for s in &sources {
            for l in 0..s.meta.n_docs {
                assert_eq!(merged.id(local), s.id(l));
                assert_eq!(merged.text(local).unwrap(), s.text(l).unwrap());
                assert_eq!(merged.metadata(local).unwrap(), s.metadata(l).unwrap());
                let ((a, b), (ma, mb)) = (s.token_range(l), merged.token_range(local));
                assert_eq!(b - a, mb - ma);
                for (t, mt) in (a..b).zip(ma..mb) {
                    assert_eq!(code(s, t), code(&merged, mt));
                    assert_eq!(
                        s.residuals()[t * rb..(t + 1) * rb],
                        merged.residuals()[mt * rb..(mt + 1) * rb]
                    );
                }
                assert_eq!(merged.find(s.id(l)).collect::<Vec<_>>(), vec![local]);
                local += 1;
            }
        }
        let mut postings = 0;
        for c in 0..cb.k {
            let joined: Vec<u32> = sources
                .iter()
                .flat_map(|s| s.ivf_list(c).unwrap().to_vec())
                .collect();
            assert_eq!(merged.ivf_list(c).unwrap(), &joined[..], "centroid {c}");
            postings += joined.len();
        }
        assert!(postings >= 205);
        // Cancelled: an error, and the caller is told which file to delete.
        let mut created = Vec::new();
        let r = merge_segments(&dir, 100, &sources, cb.k, rb, &mut created, &|| true);
        assert_eq!(r.err().map(|e| e.code()), Some("ABORTED"));
        assert_eq!(created.len(), 1);
        drop(merged);
        drop(sources);
        drop(snap);
        drop(idx);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn merges_like_a_binary_counter() {
        assert_eq!(tail_to_merge(&[]), 0);
        assert_eq!(tail_to_merge(&[5]), 0);
        assert_eq!(tail_to_merge(&[100, 10]), 0);
        assert_eq!(tail_to_merge(&[20, 10]), 2);
        assert_eq!(tail_to_merge(&[100, 10, 60]), 3);
        assert_eq!(tail_to_merge(&[1000, 4, 2, 1, 1]), 4);
        // One-token commits: the segment count stays logarithmic.
        let mut segs: Vec<u64> = Vec::new();
        let mut most = 0;
        for _ in 0..1000 {
            segs.push(1);
            let take = tail_to_merge(&segs);
            if take > 0 {
                let merged: u64 = segs.drain(segs.len() - take..).sum();
                segs.push(merged);
            }
            most = most.max(segs.len());
            assert!(segs.windows(2).all(|w| w[0] > 2 * w[1]));
        }
        assert_eq!(segs.iter().sum::<u64>(), 1000);
        assert!(most <= 10, "{most} segments");
    }
}
