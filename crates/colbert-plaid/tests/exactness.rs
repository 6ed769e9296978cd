#![allow(clippy::unwrap_used)]
//! With everything probed and nothing pruned, search is exact MaxSim over the decompressed
//! embeddings; on well-separated data the ranking equals exact MaxSim over the raw ones.
mod common;
use colbert_plaid::*;
use common::*;

#[test]
fn exhaustive_search_is_exact_maxsim_over_decompressed() {
    let dim = 64;
    let n = 80;
    let c = Corpus::new(21, n, dim, 8, 40);
    for nbits in [1u8, 2, 4] {
        let t = TempDir::new("exact");
        let k_cent = 32;
        let idx = build_index(
            t.path(),
            IndexOptions {
                nbits,
                num_centroids: Some(k_cent),
                ..Default::default()
            },
            c.ids.clone(),
            c.docs.view(),
        );
        let decompressed = idx.reconstruct(&c.ids).unwrap();
        let q = c.queries(5, 12, 16);
        let p = SearchParams {
            n_probe: Some(k_cent),
            centroid_score_threshold: Some(f32::NEG_INFINITY),
            candidates: Some(4 * n),
            ..SearchParams::new(n)
        };
        let res = idx.search(q.view(), &p, None, &no_cancel()).unwrap();
        let exact = exact_topk(q.view(), decompressed.view(), &c.ids, n);
        // A small subset skips stages 1–5 and reconstructs its tokens (no centroid scores):
        // the same scores.
        let some: Vec<String> = c.ids.iter().step_by(9).cloned().collect();
        let sub = idx
            .search_where(
                q.view(),
                &SearchParams::new(some.len()),
                Some(&some),
                None,
                &no_cancel(),
            )
            .unwrap();
        for (hits, e) in sub.iter().zip(&exact) {
            assert_eq!(hits.len(), some.len());
            for h in hits {
                let want = e.iter().find(|x| x.0 == h.id).unwrap().1;
                assert!(
                    (h.score - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{} vs {want}",
                    h.score
                );
            }
        }
        for (r, e) in res.iter().zip(&exact) {
            assert_eq!(r.len(), n);
            for (h, (id, s)) in r.iter().zip(e) {
                assert!(
                    (h.score - s).abs() <= 1e-4 * s.abs().max(1.0),
                    "{} vs {}",
                    h.score,
                    s
                );
                // Same order up to float ties.
                if h.id != *id {
                    let s2 = e.iter().find(|x| x.0 == h.id).unwrap().1;
                    assert!((s2 - s).abs() < 1e-4);
                }
            }
        }
    }
}

/// Documents made of their own words; each query takes 10, 6 and 4 tokens from three
/// documents, so exact MaxSim ranks those three with wide gaps.
#[test]
fn ranking_equals_exact_maxsim_on_well_separated_data() {
    let dim = 128;
    let n = 60;
    let mut rng = Rng::new(5);
    let noisy = |rng: &mut Rng, base: &[f32], s: f32| {
        let mut v: Vec<f32> = base.iter().map(|b| b + s * rng.gauss()).collect();
        normalize(&mut v);
        v
    };
    let docs: Vec<Vec<Vec<f32>>> = (0..n)
        .map(|_| {
            (0..(10 + rng.below(20)))
                .map(|_| {
                    let mut v: Vec<f32> = (0..dim).map(|_| rng.gauss()).collect();
                    normalize(&mut v);
                    v
                })
                .collect()
        })
        .collect();
    let raw = Embeddings::from_items(dim, docs.iter().map(|d| d.concat()).collect());
    let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let mut queries = vec![];
    for qi in 0..10 {
        let mut q = vec![];
        for (j, m) in [10usize, 6, 4].iter().enumerate() {
            let d = &docs[(qi * 4 + j * 7) % n];
            for _ in 0..*m {
                let t = rng.below(d.len());
                q.extend(noisy(&mut rng, &d[t], 0.02));
            }
        }
        queries.push(q);
    }
    let q = Embeddings::from_items(dim, queries);
    let truth = exact_topk(q.view(), raw.view(), &ids, 3);
    for nbits in [1u8, 2, 4] {
        let t = TempDir::new("separated");
        let idx = build_index(
            t.path(),
            IndexOptions {
                nbits,
                num_centroids: Some(64),
                ..Default::default()
            },
            ids.clone(),
            raw.view(),
        );
        let p = SearchParams {
            n_probe: Some(64),
            centroid_score_threshold: Some(f32::NEG_INFINITY),
            candidates: Some(4 * n),
            ..SearchParams::new(3)
        };
        let res = idx.search(q.view(), &p, None, &no_cancel()).unwrap();
        for (r, e) in res.iter().zip(&truth) {
            // 1-bit residuals on unclustered random vectors are coarse: compare the top 1.
            let keep = if nbits == 1 { 1 } else { 3 };
            let got: Vec<&str> = r.iter().take(keep).map(|h| h.id.as_str()).collect();
            let want: Vec<&str> = e.iter().take(keep).map(|x| x.0.as_str()).collect();
            assert_eq!(got, want, "nbits {nbits}");
        }
        // Default (pruned, probed) settings find the same top 4 on this data.
        let res = idx
            .search(q.view(), &SearchParams::new(4), None, &no_cancel())
            .unwrap();
        for (r, e) in res.iter().zip(&truth) {
            assert_eq!(r[0].id, e[0].0, "nbits {nbits}");
        }
    }
}

#[test]
fn pruned_two_stage_search_scores_are_exact_for_what_it_returns() {
    let dim = 32;
    let c = Corpus::new(22, 120, dim, 8, 30);
    let t = TempDir::new("exact2");
    let idx = build_index(
        t.path(),
        IndexOptions {
            nbits: 2,
            num_centroids: Some(64),
            ..Default::default()
        },
        c.ids.clone(),
        c.docs.view(),
    );
    let q = c.queries(6, 8, 12);
    for p in [
        SearchParams::new(10),
        SearchParams::new(50),
        SearchParams::new(200),
    ] {
        let res = idx.search(q.view(), &p, None, &no_cancel()).unwrap();
        for (qi, r) in res.iter().enumerate() {
            assert!(r.len() <= p.k);
            assert!(r.windows(2).all(|w| w[0].score >= w[1].score));
            let docs = idx
                .reconstruct(&r.iter().map(|h| h.id.clone()).collect::<Vec<_>>())
                .unwrap();
            for (i, h) in r.iter().enumerate() {
                let s = colbert_core::maxsim_pair(dim, q.item(qi), docs.item(i));
                assert!((s - h.score).abs() < 1e-4);
            }
        }
    }
}
