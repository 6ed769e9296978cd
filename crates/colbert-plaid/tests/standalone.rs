#![allow(clippy::unwrap_used)]
//! The standalone codebook (the cluster index's codec) against the local engine: trained on the
//! same documents with the same options it is the same codebook, its blobs decode to the local
//! index's stored embeddings, and its scores are the local index's exact scores.
mod common;
use colbert_core::{Embeddings, EmbeddingsView};
use colbert_plaid::standalone::{StandaloneCodebook, BLOB_FORMAT};
use colbert_plaid::*;
use common::*;

fn options(nbits: u8) -> IndexOptions {
    IndexOptions {
        nbits,
        num_centroids: Some(64),
        ..Default::default()
    }
}

#[test]
fn matches_the_local_index_trained_on_the_same_documents() {
    let dim = 64;
    let n = 120;
    let c = Corpus::new(7, n, dim, 5, 40);
    for nbits in [1u8, 2, 4] {
        let t = TempDir::new("standalone");
        let idx = build_index(t.path(), options(nbits), c.ids.clone(), c.docs.view());
        let cb = StandaloneCodebook::train(c.docs.view(), &options(nbits), &no_cancel(), &|_| {})
            .unwrap();
        assert_eq!((cb.dim(), cb.nbits(), cb.num_centroids()), (dim, nbits, 64));
        // Bytes round trip.
        let cb = StandaloneCodebook::from_bytes(&cb.to_bytes(), dim).unwrap();
        let docs = cb.compress(c.docs.view(), &no_cancel()).unwrap();
        assert_eq!(docs.len(), n);
        // Decoding equals the local index's stored embeddings.
        let local = idx.reconstruct(&c.ids).unwrap();
        for (i, d) in docs.iter().enumerate() {
            assert_eq!(d.blob[0], BLOB_FORMAT);
            let mine = cb.decompress(&d.blob).unwrap();
            let theirs = local.item(i);
            assert_eq!(mine.len(), theirs.len());
            let max = mine
                .iter()
                .zip(theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(max <= 1e-6, "doc {i}: {max}");
            assert!(
                d.centroids.windows(2).all(|w| w[0] < w[1]),
                "centroid ids sorted and unique"
            );
        }
        // Scores equal the local engine's exact scores (every document scored).
        let q = c.queries(3, 6, 16);
        let p = SearchParams {
            n_probe: Some(64),
            centroid_score_threshold: Some(f32::NEG_INFINITY),
            candidates: Some(4 * n),
            ..SearchParams::new(n)
        };
        let res = idx.search(q.view(), &p, None, &no_cancel()).unwrap();
        let blobs: Vec<&[u8]> = docs.iter().map(|d| d.blob.as_slice()).collect();
        for (qi, hits) in res.iter().enumerate() {
            let scores = cb.score(q.item(qi), &blobs).unwrap();
            assert_eq!(hits.len(), n);
            for h in hits {
                let j = c.ids.iter().position(|x| *x == h.id).unwrap();
                assert!(
                    (scores[j] - h.score).abs() <= 1e-4 * h.score.abs().max(1.0),
                    "nbits {nbits} query {qi} {}: {} vs {}",
                    h.id,
                    scores[j],
                    h.score
                );
            }
        }
    }
}

#[test]
fn probing_returns_each_tokens_best_centroids() {
    let dim = 32;
    let c = Corpus::new(9, 60, dim, 4, 20);
    let cb = StandaloneCodebook::train(c.docs.view(), &options(2), &no_cancel(), &|_| {}).unwrap();
    let q = c.queries(4, 3, 8);
    let probed = cb.probe(q.view(), 5).unwrap();
    assert_eq!(probed.len(), 3);
    // Brute force from the decoded centroids: the exact q·c of every centroid.
    let bytes = cb.to_bytes();
    let again = StandaloneCodebook::from_bytes(&bytes, dim).unwrap();
    for (qi, tokens) in probed.iter().enumerate() {
        assert_eq!(tokens.len(), 8);
        for (t, best) in tokens.iter().enumerate() {
            assert_eq!(best.len(), 5);
            assert!(best.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
            let row = &q.item(qi)[t * dim..(t + 1) * dim];
            // Every probed score is a real centroid score, and no unprobed centroid beats the last.
            let all = again
                .probe(EmbeddingsView::new(dim, &[0, 1], row).unwrap(), 64)
                .unwrap();
            let all = &all[0][0];
            assert_eq!(all.len(), 64);
            assert_eq!(&all[..5], &best[..]);
        }
    }
    // n_probe larger than the codebook is clamped.
    assert_eq!(cb.probe(q.view(), 1000).unwrap()[0][0].len(), 64);
}

#[test]
fn damaged_or_foreign_bytes_are_refused_with_a_code() {
    let dim = 16;
    let c = Corpus::new(11, 30, dim, 3, 10);
    let cb = StandaloneCodebook::train(c.docs.view(), &options(4), &no_cancel(), &|_| {}).unwrap();
    let mut bytes = cb.to_bytes();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let err = StandaloneCodebook::from_bytes(&bytes, dim).unwrap_err();
    assert_eq!(colbert_core::CodedError::code(&err), "INDEX_CORRUPT");
    assert!(StandaloneCodebook::from_bytes(&[1, 2, 3], dim).is_err());
    let doc = &cb.compress(c.docs.view(), &no_cancel()).unwrap()[0];
    let q = c.queries(1, 1, 4);
    for bad in [
        doc.blob[..doc.blob.len() - 1].to_vec(),
        [&[9u8][..], &doc.blob[1..]].concat(),
        [&[1u8, 2][..], &doc.blob[2..]].concat(),
    ] {
        let err = cb.score(q.item(0), &[&bad]).unwrap_err();
        assert_eq!(colbert_core::CodedError::code(&err), "INDEX_CORRUPT");
    }
    // A blob of a codebook with other dims or bits is refused, not misread.
    let other =
        StandaloneCodebook::train(c.docs.view(), &options(2), &no_cancel(), &|_| {}).unwrap();
    let foreign = &other.compress(c.docs.view(), &no_cancel()).unwrap()[0];
    assert!(cb.score(q.item(0), &[&foreign.blob]).is_err());
    let wrong = Embeddings::new(8, vec![0, 1], vec![0.5; 8]).unwrap();
    assert_eq!(
        colbert_core::CodedError::code(&cb.compress(wrong.view(), &no_cancel()).unwrap_err()),
        "INVALID_ARGUMENT"
    );
    let cancelled = colbert_core::CancelToken::new();
    cancelled.cancel();
    assert_eq!(
        colbert_core::CodedError::code(&cb.compress(c.docs.view(), &cancelled).unwrap_err()),
        "ABORTED"
    );
}
