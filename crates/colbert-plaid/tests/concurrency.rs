#![allow(clippy::unwrap_used)]
//! Many concurrent searches on one handle; searches on snapshots while a writer commits.
mod common;
use colbert_plaid::*;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const DIM: usize = 32;

#[test]
fn concurrent_searches_match_sequential() {
    let t = TempDir::new("conc");
    let c = Corpus::new(31, 150, DIM, 5, 25);
    let idx = build_index(
        t.path(),
        IndexOptions {
            num_centroids: Some(32),
            ..Default::default()
        },
        c.ids.clone(),
        c.docs.view(),
    );
    let idx = Arc::new(idx);
    let q = Arc::new(c.queries(1, 16, 8));
    let p = SearchParams::new(10);
    let expected = Arc::new(idx.search(q.view(), &p, None, &no_cancel()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (idx, q, expected, p) = (idx.clone(), q.clone(), expected.clone(), p.clone());
            std::thread::spawn(move || {
                for _ in 0..10 {
                    // Single queries and the batch, from plain threads (each uses rayon inside).
                    let one = Embeddings::from_items(DIM, vec![q.item(i).to_vec()]);
                    let r = idx.search(one.view(), &p, None, &no_cancel()).unwrap();
                    assert_eq!(r[0], expected[i]);
                    assert_eq!(
                        &idx.search(q.view(), &p, None, &no_cancel()).unwrap(),
                        &*expected
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn searches_continue_while_a_writer_commits() {
    let t = TempDir::new("conc2");
    let c = Corpus::new(32, 200, DIM, 5, 25);
    let idx = PlaidIndex::create(
        t.path(),
        IndexOptions {
            num_centroids: Some(32),
            ..Default::default()
        },
        false,
    )
    .unwrap();
    let (ids, e) = c.slice(0..100);
    let mut w = idx.writer().unwrap();
    w.push(ids, e.view()).unwrap();
    w.commit(&no_cancel(), &|_| {}).unwrap();
    let reader = Arc::new(PlaidIndex::open(t.path()).unwrap());
    let q = Arc::new(c.queries(2, 6, 8));
    let stop = Arc::new(AtomicBool::new(false));
    let searchers: Vec<_> = (0..3)
        .map(|_| {
            let (reader, q, stop) = (reader.clone(), q.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                let mut refreshed = 0;
                while !stop.load(Ordering::SeqCst) || n < 5 {
                    let r = reader
                        .search(q.view(), &SearchParams::new(5), None, &no_cancel())
                        .unwrap();
                    assert!(r.iter().all(|h| h.len() == 5));
                    if reader.refresh().unwrap() {
                        refreshed += 1;
                    }
                    n += 1;
                }
                (n, refreshed)
            })
        })
        .collect();
    // The writer adds and deletes in 5 transactions through another handle.
    for step in 0..5 {
        let (ids, e) = c.slice(100 + step * 20..120 + step * 20);
        let mut w = idx.writer().unwrap();
        w.push(ids, e.view()).unwrap();
        w.delete(&[format!("doc-{step}")]).unwrap();
        w.commit(&no_cancel(), &|_| {}).unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    for s in searchers {
        let (n, _) = s.join().unwrap();
        assert!(n >= 5);
    }
    reader.refresh().unwrap();
    assert_eq!(reader.info().unwrap().documents, 195);
    assert_eq!(
        reader.info().unwrap().generation,
        idx.info().unwrap().generation
    );
}
