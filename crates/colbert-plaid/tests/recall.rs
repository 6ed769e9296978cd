#![allow(clippy::unwrap_used)]
mod common;
use colbert_plaid::*;
use common::*;
use std::time::Instant;

fn recall_at(res: &[Vec<Hit>], truth: &[Vec<(String, f32)>], k: usize) -> f64 {
    let mut hit = 0usize;
    for (r, t) in res.iter().zip(truth) {
        hit += r
            .iter()
            .take(k)
            .filter(|h| t.iter().take(k).any(|x| x.0 == h.id))
            .count();
    }
    hit as f64 / (k * truth.len()) as f64
}

fn run(
    n_docs: usize,
    max_tokens: usize,
    nbits: u8,
    num_centroids: Option<usize>,
    n_queries: usize,
    full: bool,
) -> f64 {
    let dir = TempDir::new("recall");
    let dim = 128;
    let t = Instant::now();
    let c = Corpus::new(11, n_docs, dim, 30, max_tokens);
    eprintln!("data {:?}, {} tokens", t.elapsed(), c.docs.rows());
    let opts = IndexOptions {
        nbits,
        num_centroids,
        ..Default::default()
    };
    let idx = PlaidIndex::create(dir.path(), opts, false).unwrap();
    let mut w = idx.writer().unwrap();
    let t = Instant::now();
    for start in (0..n_docs).step_by(500) {
        let (ids, e) = c.slice(start..(start + 500).min(n_docs));
        w.push(ids, e.view()).unwrap();
    }
    w.commit(&no_cancel(), &|_| {}).unwrap();
    let build = t.elapsed();
    let info = idx.info().unwrap();
    eprintln!(
        "build {build:?} ({:.0} tokens/s), K={}, {:.2} B/token codes+residuals, {:.2} B/token IVF, {:.1} B/token all files, {:?}",
        info.embeddings as f64 / build.as_secs_f64(),
        info.num_centroids,
        info.payload_bytes as f64 / info.embeddings as f64,
        info.ivf_bytes as f64 / info.embeddings as f64,
        info.bytes_on_disk as f64 / info.embeddings as f64,
        info
    );
    if full {
        // Update costs: delete 1,000 ids (one transaction), then add 200 new documents.
        let del: Vec<String> = c.ids.iter().step_by(3).take(1000).cloned().collect();
        let t = Instant::now();
        let n = idx.delete(&del).unwrap();
        eprintln!("delete {n} docs: {:?}", t.elapsed());
        let extra = Corpus::with_prefix(12, 200, dim, 30, max_tokens, "extra");
        let t = Instant::now();
        let mut w = idx.writer().unwrap();
        w.push(extra.ids.clone(), extra.docs.view()).unwrap();
        let ci = w.commit(&no_cancel(), &|_| {}).unwrap();
        eprintln!(
            "add 200 docs ({} tokens): {:?}, {:?}",
            extra.docs.rows(),
            t.elapsed(),
            ci
        );
        // Restore the original collection for the recall measurement.
        let mut w = idx.writer().unwrap();
        w.delete(&extra.ids).unwrap();
        let idxs: Vec<usize> = (0..n_docs).step_by(3).take(1000).collect();
        let items = idxs.iter().map(|&i| c.docs.item(i).to_vec()).collect();
        w.push(del.clone(), Embeddings::from_items(dim, items).view())
            .unwrap();
        w.commit(&no_cancel(), &|_| {}).unwrap();
        let t = Instant::now();
        let _ = PlaidIndex::open(dir.path()).unwrap();
        eprintln!("open: {:?}", t.elapsed());
    }
    let q = c.queries(99, n_queries, 32);
    let truth = exact_topk(q.view(), c.docs.view(), &c.ids, 10);
    let mut last = 0.0;
    let exhaustive = SearchParams {
        n_probe: Some(info.num_centroids),
        centroid_score_threshold: Some(f32::NEG_INFINITY),
        candidates: Some(4 * n_docs),
        ..SearchParams::new(10)
    };
    let params = if full {
        vec![SearchParams::new(10), SearchParams::new(100), exhaustive]
    } else {
        vec![SearchParams::new(10)]
    };
    for p in params {
        let t = Instant::now();
        let res = idx.search(q.view(), &p, None, &no_cancel()).unwrap();
        let el = t.elapsed();
        let r = recall_at(&res, &truth, 10);
        eprintln!(
            "{p:?}: recall@10 {r:.4}, {:.1} QPS batch",
            n_queries as f64 / el.as_secs_f64()
        );
        if last == 0.0 {
            last = r;
        }
        if !full {
            continue;
        }
        // single-query latency
        let t = Instant::now();
        for i in 0..n_queries.min(50) {
            let one = Embeddings::from_items(dim, vec![q.item(i).to_vec()]);
            idx.search(one.view(), &p, None, &no_cancel()).unwrap();
        }
        eprintln!(
            "  single-query mean {:?}",
            t.elapsed() / n_queries.min(50) as u32
        );
    }
    last
}

/// Debug-friendly size: default search settings, fixed small K for build speed.
#[test]
fn recall_small_default_search() {
    let r = run(300, 120, 4, Some(128), 40, false);
    assert!(r >= 0.95, "recall@10 {r}");
}

/// The size: a few thousand docs, 30–200 tokens, dim 128, every default.
/// Run with `cargo test --release -p colbert-plaid --test recall -- --ignored --nocapture`.
#[test]
#[ignore]
fn recall_default_everything() {
    let n: usize = std::env::var("PLAID_RECALL_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let r4 = run(n, 200, 4, None, 200, true);
    let r2 = run(n, 200, 2, None, 200, true);
    assert!(r4 >= 0.95, "nbits 4: recall@10 {r4}");
    assert!(r2 >= 0.90, "nbits 2: recall@10 {r2}");
}
