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
//! lists it instead of its sources, and the sources are deleted once unreferenced. Deleted
//! documents are left out and the survivors renumbered from the first source's start (merges
//! only cover the newest segments, so no other document's number moves; external ids never
//! change). Nothing is re-encoded: codes and packed residuals are copied after their checksums
//! are verified, so corruption in a source fails the commit instead of being copied under a
//! fresh checksum; the stored inverse norms are recomputed from them and the codebook (which
//! also upgrades format-2 segments, that have none). `PlaidIndex::compact` merges every segment this way on demand.

use std::path::{Path, PathBuf};

use colbert_core::CancelToken;
use memmap2::Mmap;

use crate::codec::Codebook;
use crate::error::{PlaidError, Result};
use crate::format::FORMAT_VERSION;
use crate::ids::StagedIds;
use crate::manifest::{Manifest, SegmentMeta};
use crate::segment::{Codes, Segment, SegmentWriter, StagedFields};
use crate::storage::Spill;

/// Tokens copied per step (cancellation is polled between steps).
const COPY_TOKENS: usize = 1 << 16;

/// The merge policy of a commit: how many of the newest segments of `m` (the manifest being
/// committed) to merge into one. None for a rebuild (it writes one segment); every segment when
/// compacting — asked for, or once deleted documents are at least as many as live ones (so
/// deleted space never exceeds live space; each compaction needs as many deletions again before
/// the next) — if that changes anything; otherwise the binary counter of [`tail_to_merge`].
pub(crate) fn segments_to_merge(m: &Manifest, rebuild: bool, compact_asked: bool) -> usize {
    let compact =
        compact_asked || (!rebuild && m.deleted_docs > 0 && m.deleted_docs >= m.live_docs);
    if rebuild {
        0
    } else if compact && worth_compacting(m) {
        m.segments.len()
    } else if compact {
        0
    } else {
        let tokens: Vec<u64> = m.segments.iter().map(|s| s.n_tokens).collect();
        tail_to_merge(&tokens)
    }
}

/// Whether merging every segment would change anything: several segments, deleted documents
/// to drop, or a segment in an older format to rewrite. (Compacting otherwise is a no-op, and
/// commits nothing.)
pub(crate) fn worth_compacting(m: &Manifest) -> bool {
    m.segments.len() >= 2
        || m.deleted_docs > 0
        || m.segments.iter().any(|s| s.format < FORMAT_VERSION)
}

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

/// Where a merged segment goes and the codebook it is written for (its size is the number
/// of IVF lists; its centroids give the stored norms).
pub(crate) struct MergeOutput<'a> {
    pub dir: &'a Path,
    pub generation: u64,
    pub codebook: &'a Codebook,
}

/// Writes one segment holding the documents of `sources` (consecutive, oldest first) for
/// which `keep(document number)` holds, renumbered consecutively from the first source's
/// `doc_start`, with an IVF of `num_centroids` lists; `None` when no document is kept. The new
/// file's path is pushed to `created` as soon as it exists, so the caller's transaction
/// deletes it on any error.
pub(crate) fn merge_segments(
    out: &MergeOutput<'_>,
    sources: &[&Segment],
    keep: &(dyn Fn(u32) -> bool + Sync),
    created: &mut Vec<PathBuf>,
    cancel: &CancelToken,
) -> Result<Option<SegmentMeta>> {
    let &MergeOutput {
        dir,
        generation,
        codebook,
    } = out;
    let (num_centroids, row_bytes) = (codebook.k, codebook.codec.row_bytes());
    let Some(first) = sources.first() else {
        return Err(PlaidError::Internal("nothing to merge".into()));
    };
    // Kept documents: lengths, ids, stored fields (staged through a spill file like a
    // writer's), and per source the token ranges to copy (adjacent kept documents coalesced).
    let mut doclens = Vec::new();
    let mut ids = StagedIds::default();
    let mut lens: Vec<(u32, u32)> = Vec::new();
    let mut spill: Option<Spill> = None;
    let mut ranges: Vec<Vec<(usize, usize)>> = Vec::with_capacity(sources.len());
    let mut next = first.meta.doc_start;
    for s in sources {
        if s.meta.doc_start != next {
            return Err(PlaidError::Internal(
                "merged segments are not consecutive".into(),
            ));
        }
        next += s.meta.n_docs;
        let mut r: Vec<(usize, usize)> = Vec::new();
        for l in 0..s.meta.n_docs {
            if !keep(s.meta.doc_start + l) {
                continue;
            }
            let (a, b) = s.token_range(l);
            doclens.push((b - a) as u32);
            ids.push(s.id(l));
            let (t, m) = (s.text(l)?.as_bytes(), s.metadata(l)?.as_bytes());
            if spill.is_none() && !(t.is_empty() && m.is_empty()) {
                spill = Some(Spill::create(dir, generation)?);
            }
            lens.push(match spill.as_mut() {
                Some(sp) => sp.append_fields(t, m)?,
                None => (0, 0),
            });
            match r.last_mut() {
                Some(last) if last.1 == a => last.1 = b,
                _ => r.push((a, b)),
            }
        }
        ranges.push(r);
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let mut writer = SegmentWriter::create(
        dir,
        generation,
        first.meta.doc_start,
        &doclens,
        &ids,
        num_centroids,
        row_bytes,
    )?;
    created.push(writer.path().to_path_buf());
    drop(ids);
    // Codes and residuals, verified, then copied (codes widened to u32 for the writer, which
    // stores them as u16 or u32 by `num_centroids`).
    let mut at = 0u64;
    let mut codes: Vec<u32> = Vec::with_capacity(COPY_TOKENS);
    let mut inv_norms: Vec<f32> = Vec::with_capacity(COPY_TOKENS);
    for (s, r) in sources.iter().zip(&ranges) {
        for &(a, b) in r {
            let mut t0 = a;
            while t0 < b {
                if cancel.is_cancelled() {
                    return Err(PlaidError::Aborted);
                }
                let t1 = (t0 + COPY_TOKENS).min(b);
                s.check_codes(t0, t1)?;
                s.check_residuals(t0, t1)?;
                codes.clear();
                match s.codes()? {
                    Codes::U16(c) => {
                        codes.extend(c.get(t0..t1).unwrap_or(&[]).iter().map(|&v| v as u32))
                    }
                    Codes::U32(c) => codes.extend_from_slice(c.get(t0..t1).unwrap_or(&[])),
                }
                match s.residuals().get(t0 * row_bytes..t1 * row_bytes) {
                    Some(res)
                        if codes.len() == t1 - t0
                            && codes.iter().all(|&c| (c as usize) < num_centroids)
                            && codebook
                                .codec
                                .inv_norms(
                                    codebook.centroids(),
                                    codes.iter().map(|&c| c as usize),
                                    res,
                                    &mut inv_norms,
                                )
                                .is_some() =>
                    {
                        writer.write_tokens(at, &codes, res, &inv_norms)?
                    }
                    _ => {
                        return Err(PlaidError::corrupt(format!(
                            "{}: code or residual out of range",
                            s.meta.file.name
                        )))
                    }
                }
                at += (t1 - t0) as u64;
                t0 = t1;
            }
        }
    }
    let map: Option<Mmap> = spill.as_mut().map(Spill::map).transpose()?.flatten();
    if cancel.is_cancelled() {
        return Err(PlaidError::Aborted);
    }
    writer
        .finish(&StagedFields {
            lens: &lens,
            bytes: map.as_deref().unwrap_or(&[]),
        })
        .map(Some)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::segment::DocumentFields;
    use crate::{IndexOptions, PlaidIndex};
    use colbert_core::CodedError;
    use colbert_core::Embeddings;

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
                colbert_core::normalize_rows(16, &mut v);
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
            let info = w.commit(&CancelToken::new(), &|_| {}).unwrap();
            assert_eq!(info.merged_segments, 0);
        }
        let snap = idx.snapshot().unwrap();
        let cb = snap.codebook.as_ref().unwrap();
        let sources: Vec<&Segment> = snap.segments.iter().map(|s| &**s).collect();
        assert_eq!(sources.len(), 2);
        let rb = cb.codec.row_bytes();
        let output = |generation| MergeOutput {
            dir: &dir,
            generation,
            codebook: cb,
        };
        let mut created = Vec::new();
        let meta = merge_segments(
            &output(99),
            &sources,
            &|_| true,
            &mut created,
            &CancelToken::new(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!((meta.doc_start, meta.n_docs), (0, 205));
        assert_eq!(
            meta.n_tokens,
            sources.iter().map(|s| s.meta.n_tokens).sum::<u64>()
        );
        let merged = Segment::open(&dir, &meta, cb.codec.row_bytes()).unwrap();
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
        // Every IVF list is its definition: the documents with a token of that centroid, in
        // order (the unit-test IVF buffer is 64 postings, so this segment took many passes).
        for c in 0..cb.k {
            let want: Vec<u32> = (0..meta.n_docs)
                .filter(|&l| {
                    let (a, b) = merged.token_range(l);
                    (a..b).any(|t| code(&merged, t) as usize == c)
                })
                .collect();
            assert_eq!(merged.ivf_list(c).unwrap(), &want[..], "centroid {c}");
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
        let r = merge_segments(
            &output(100),
            &sources,
            &|_| true,
            &mut created,
            &CancelToken::cancelled_after(0),
        );
        assert_eq!(r.err().map(|e| e.code()), Some("ABORTED"));
        assert_eq!(created.len(), 1);
        // Dropping documents: the survivors, in order, renumbered from 0; each IVF list is the
        // sources' lists without the dropped documents, renumbered.
        let keep = |d: u32| d % 3 != 1;
        let renumber = |d: u32| d - d.div_ceil(3);
        let mut created = Vec::new();
        let meta = merge_segments(
            &output(101),
            &sources,
            &keep,
            &mut created,
            &CancelToken::new(),
        )
        .unwrap()
        .unwrap();
        let kept: Vec<u32> = (0..205).filter(|&d| keep(d)).collect();
        assert_eq!((meta.doc_start, meta.n_docs as usize), (0, kept.len()));
        let thinned = Segment::open(&dir, &meta, rb).unwrap();
        for (local, &d) in kept.iter().enumerate() {
            assert_eq!(renumber(d), local as u32);
            let (s, l) = if d < 200 {
                (sources[0], d)
            } else {
                (sources[1], d - 200)
            };
            assert_eq!(thinned.id(local as u32), s.id(l));
            assert_eq!(thinned.text(local as u32).unwrap(), s.text(l).unwrap());
            let ((a, b), (ta, tb)) = (s.token_range(l), thinned.token_range(local as u32));
            assert_eq!(
                s.residuals()[a * rb..b * rb],
                thinned.residuals()[ta * rb..tb * rb]
            );
        }
        for c in 0..cb.k {
            let want: Vec<u32> = sources
                .iter()
                .flat_map(|s| s.ivf_list(c).unwrap().to_vec())
                .filter(|&d| keep(d))
                .map(renumber)
                .collect();
            assert_eq!(thinned.ivf_list(c).unwrap(), &want[..], "centroid {c}");
        }
        drop(thinned);
        // Nothing kept: no segment, no file.
        let mut created = Vec::new();
        let none = merge_segments(
            &output(102),
            &sources,
            &|_| false,
            &mut created,
            &CancelToken::new(),
        );
        assert!(none.unwrap().is_none() && created.is_empty());
        // A later commit reuses the open, verified segments and codebook it keeps.
        assert_eq!(idx.delete(&["a0".to_string()]).unwrap(), 1);
        let after = idx.snapshot().unwrap();
        assert!(std::sync::Arc::ptr_eq(
            &snap.segments[0],
            &after.segments[0]
        ));
        assert!(std::sync::Arc::ptr_eq(
            snap.codebook.as_ref().unwrap(),
            after.codebook.as_ref().unwrap()
        ));
        drop(after);
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
