#![allow(clippy::unwrap_used)]
//! Create/open/info, errors, transactions (push validation, abort), add/delete/reopen,
//! subset search, centroid expansion, rebuild, close and format versioning.
mod common;
use colbert_plaid::*;
use common::*;

const DIM: usize = 32;

fn opts(k: usize) -> IndexOptions {
    IndexOptions {
        num_centroids: Some(k),
        nbits: 2,
        ..Default::default()
    }
}

fn build(dir: &std::path::Path, c: &Corpus, range: std::ops::Range<usize>) -> PlaidIndex {
    let (ids, e) = c.slice(range);
    build_index(dir, opts(32), ids, e.view())
}

fn search_ids(
    idx: &PlaidIndex,
    q: &Embeddings,
    p: &SearchParams,
    subset: Option<&[String]>,
) -> Vec<Vec<String>> {
    idx.search(q.view(), p, subset, &no_cancel())
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(|h| h.id).collect())
        .collect()
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    r.err().map(|e| e.code()).unwrap_or("OK")
}

fn dir_files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn create_open_and_errors() {
    let t = TempDir::new("create");
    let missing = t.path().join("missing");
    assert_eq!(code(PlaidIndex::open(&missing)), "INDEX_NOT_FOUND");
    assert_eq!(
        code(PlaidIndex::create(
            t.path(),
            IndexOptions {
                nbits: 3,
                ..Default::default()
            },
            false
        )),
        "INVALID_ARGUMENT"
    );
    let idx = PlaidIndex::create(t.path(), IndexOptions::default(), false).unwrap();
    let info = idx.info().unwrap();
    assert_eq!(
        (
            info.format_version,
            info.generation,
            info.documents,
            info.dim,
            info.nbits
        ),
        (FORMAT_VERSION, 0, 0, None, 4)
    );
    // Searching an untrained index gives empty results.
    let q = Embeddings::from_items(DIM, vec![vec![0.1; DIM]]);
    assert_eq!(
        idx.search(q.view(), &SearchParams::new(3), None, &no_cancel())
            .unwrap(),
        vec![vec![]]
    );
    assert_eq!(
        code(PlaidIndex::create(t.path(), IndexOptions::default(), false)),
        "INDEX_EXISTS"
    );
    let again = PlaidIndex::create(t.path(), IndexOptions::default(), true).unwrap();
    assert_eq!(again.info().unwrap().generation, 1);
    assert!(idx.refresh().unwrap());
    let other = TempDir::new("foreign");
    std::fs::create_dir_all(other.path()).unwrap();
    std::fs::write(other.path().join("notes.txt"), "mine").unwrap();
    assert_eq!(
        code(PlaidIndex::create(
            other.path(),
            IndexOptions::default(),
            true
        )),
        "INDEX_EXISTS"
    );
    assert!(other.path().join("notes.txt").exists());
    assert_eq!(code(PlaidIndex::open(other.path())), "INDEX_NOT_FOUND");
}

#[test]
fn writer_lock_is_exclusive() {
    let t = TempDir::new("lock");
    let idx = PlaidIndex::create(t.path(), opts(8), false).unwrap();
    let other = PlaidIndex::open(t.path()).unwrap();
    let w = idx.writer().unwrap();
    assert_eq!(code(idx.writer()), "INDEX_LOCKED");
    assert_eq!(code(other.writer()), "INDEX_LOCKED");
    assert_eq!(code(other.delete(&ids(&["x"]))), "INDEX_LOCKED");
    drop(w);
    let w = other.writer().unwrap();
    drop(w);
    assert_eq!(other.delete(&ids(&["x"])).unwrap(), 0);
}

#[test]
fn failed_push_changes_nothing() {
    let t = TempDir::new("push");
    let c = Corpus::new(3, 60, DIM, 5, 20);
    let idx = build(t.path(), &c, 0..40);
    let before = idx.info().unwrap();
    let mut w = idx.writer().unwrap();
    let (ids2, e) = c.slice(40..50);
    let one = |v: Vec<f32>| Embeddings::from_items(v.len() / 16, vec![v]);
    // wrong dim
    let bad = Embeddings::from_items(16, vec![vec![0.5; 32]]);
    assert_eq!(code(w.push(ids(&["n1"]), bad.view())), "INVALID_ARGUMENT");
    let _ = one;
    // non-finite
    let mut nan = e.item(0).to_vec();
    nan[3] = f32::NAN;
    let nan = Embeddings::from_items(DIM, vec![nan]);
    assert_eq!(code(w.push(ids(&["n2"]), nan.view())), "INVALID_ARGUMENT");
    // duplicate within the call, against live ids, empty id, count mismatch, empty document
    let two = Embeddings::from_items(DIM, vec![e.item(0).to_vec(), e.item(1).to_vec()]);
    assert_eq!(
        code(w.push(ids(&["d", "d"]), two.view())),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        code(w.push(ids(&["new", "doc-3"]), two.view())),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        code(w.push(ids(&["", "z"]), two.view())),
        "INVALID_ARGUMENT"
    );
    assert_eq!(code(w.push(ids(&["z"]), two.view())), "INVALID_ARGUMENT");
    let empty = Embeddings::from_items(DIM, vec![vec![], e.item(0).to_vec()]);
    assert_eq!(
        code(w.push(ids(&["e1", "e2"]), empty.view())),
        "INVALID_ARGUMENT"
    );
    assert_eq!(w.pending(), 0);
    // A valid push, then a duplicate of it within the same transaction.
    w.push(ids2.clone(), e.view()).unwrap();
    assert_eq!(
        code(w.push(vec![ids2[0].clone()], one(vec![0.0; 32]).view())),
        "INVALID_ARGUMENT"
    );
    drop(w);
    // Dropping the writer discarded everything; its spill file is gone.
    assert_eq!(idx.info().unwrap(), before);
    assert!(dir_files(t.path()).iter().all(|f| !f.starts_with("spill-")));
    // Deleting an id and re-adding it in the same transaction is allowed (upsert).
    let mut w = idx.writer().unwrap();
    assert_eq!(w.delete(&ids(&["doc-3", "nope"])).unwrap(), 1);
    let (_, e3) = c.slice(3..4);
    w.push(ids(&["doc-3"]), e3.view()).unwrap();
    let info = w.commit(&no_cancel(), &|_| {}).unwrap();
    assert_eq!((info.added, info.deleted), (1, 1));
    let i = idx.info().unwrap();
    assert_eq!((i.documents, i.deleted), (40, 1));
}

#[test]
fn aborted_commit_leaves_index_unchanged() {
    let t = TempDir::new("abort");
    let c = Corpus::new(4, 80, DIM, 5, 20);
    let idx = PlaidIndex::create(t.path(), opts(16), false).unwrap();
    let files0 = dir_files(t.path());
    for stop_after in [0, 1, 3] {
        let mut w = idx.writer().unwrap();
        let (ids, e) = c.slice(0..80);
        w.push(ids, e.view()).unwrap();
        let cancel = CancelToken::cancelled_after(stop_after);
        assert_eq!(code(w.commit(&cancel, &|_| {})), "ABORTED");
        assert_eq!(idx.info().unwrap().generation, 0);
        assert_eq!(dir_files(t.path()), files0);
    }
    let reopened = PlaidIndex::open(t.path()).unwrap();
    assert_eq!(reopened.info().unwrap().documents, 0);
}

#[test]
fn add_delete_reopen_and_subset() {
    let t = TempDir::new("crud");
    let c = Corpus::new(5, 150, DIM, 5, 30);
    let idx = build(t.path(), &c, 0..100);
    let progress = std::sync::Mutex::new(vec![]);
    // Second commit: assigned to the existing centroids.
    let (ids2, e2) = c.slice(100..150);
    let mut w = idx.writer().unwrap();
    w.push(ids2, e2.view()).unwrap();
    let ci = w
        .commit(&no_cancel(), &|p| progress.lock().unwrap().push(p))
        .unwrap();
    assert!(!ci.trained);
    let events = progress.lock().unwrap().clone();
    assert!(events.contains(&Progress::new(Stage::Compress, 50, 50)));
    // The commit ends durable: its last event is the end of writing.
    assert_eq!(events.last(), Some(&Progress::new(Stage::Write, 1, 1)));
    let info = idx.info().unwrap();
    assert_eq!(
        (info.documents, info.segments, info.generation),
        (150, 2, 2)
    );
    assert_eq!(info.embeddings as usize, c.docs.rows());

    let q = c.queries(1, 10, 8);
    let all = SearchParams {
        n_probe: Some(32),
        centroid_score_threshold: Some(f32::NEG_INFINITY),
        candidates: Some(1000),
        ..SearchParams::new(5)
    };
    let before = search_ids(&idx, &q, &all, None);
    // Delete the current top hits: they disappear, nothing else moves.
    let victims: Vec<String> = before.iter().map(|r| r[0].clone()).collect();
    let mut uniq = victims.clone();
    uniq.sort();
    uniq.dedup();
    let mut with_unknown = victims.clone();
    with_unknown.push("no-such-doc".into());
    assert_eq!(idx.delete(&with_unknown).unwrap(), uniq.len());
    assert_eq!(idx.delete(&victims).unwrap(), 0);
    let after = search_ids(&idx, &q, &all, None);
    for (b, a) in before.iter().zip(&after) {
        assert!(a.iter().all(|id| !uniq.contains(id)));
        let kept: Vec<&String> = b.iter().filter(|id| !uniq.contains(id)).collect();
        assert_eq!(kept, a.iter().take(kept.len()).collect::<Vec<_>>());
    }
    let info = idx.info().unwrap();
    assert_eq!(
        (info.documents, info.deleted),
        (150 - uniq.len() as u64, uniq.len() as u64)
    );
    // Reopen: same state, same results.
    let re = PlaidIndex::open(t.path()).unwrap();
    assert_eq!(re.info().unwrap(), info);
    assert_eq!(search_ids(&re, &q, &all, None), after);
    assert!(!re.contains(&uniq[0]).unwrap());
    assert!(re.contains("doc-149").unwrap());
    // Reconstruct gives unit-norm decompressed rows.
    let r = re.reconstruct(&ids(&["doc-7"])).unwrap();
    assert_eq!(r.rows(), c.docs.item(7).len() / DIM);
    assert_eq!(code(re.reconstruct(&uniq[..1])), "INVALID_ARGUMENT");

    // Subset search: small subset (exhaustive path) and large subset (restricted probing).
    let small: Vec<String> = (0..20).map(|i| format!("doc-{}", i * 3)).collect();
    for p in [SearchParams::new(5), all.clone()] {
        for r in search_ids(&re, &q, &p, Some(&small)) {
            assert!(r.iter().all(|id| small.contains(id)), "{r:?}");
            assert_eq!(r.len(), 5);
        }
    }
    let large: Vec<String> = (0..150)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("doc-{i}"))
        .collect();
    let p = SearchParams {
        candidates: Some(40),
        ..SearchParams::new(5)
    };
    for r in search_ids(&re, &q, &p, Some(&large)) {
        assert!(r.iter().all(|id| large.contains(id)));
        assert!(r.iter().all(|id| !uniq.contains(id)));
    }
    // A subset that is everything gives the unrestricted result.
    let everything: Vec<String> = c.ids.clone();
    assert_eq!(search_ids(&re, &q, &all, Some(&everything)), after);
    // Re-adding a deleted id works and makes it searchable again.
    let mut w = re.writer().unwrap();
    let (_, e) = c.slice(0..1);
    w.push(vec![uniq[0].clone()], e.view()).unwrap();
    w.commit(&no_cancel(), &|_| {}).unwrap();
    assert!(re.contains(&uniq[0]).unwrap());
    assert!(idx.refresh().unwrap());
    assert!(idx.contains(&uniq[0]).unwrap());
}

#[test]
fn centroid_expansion_on_new_distribution() {
    let t = TempDir::new("expand");
    let a = Corpus::new(6, 100, DIM, 10, 30);
    let b = Corpus::with_prefix(7777, 60, DIM, 10, 30, "new");
    let a2 = Corpus::with_prefix(6, 130, DIM, 10, 30, "more");
    let idx = build(t.path(), &a, 0..100);
    let trained = idx.info().unwrap().drift;
    assert_eq!((trained.embeddings, trained.outlier_fraction), (0, 0.0));
    assert!(trained.trained_residual_norm > 0.0);
    // More of the training distribution: about a quarter are outliers (the threshold is the
    // 75th percentile), residuals as at training.
    let (ids, e) = a2.slice(100..130);
    let mut w = idx.writer().unwrap();
    w.push(ids, e.view()).unwrap();
    w.commit(&no_cancel(), &|_| {}).unwrap();
    let same = idx.info().unwrap().drift;
    assert_eq!(same.embeddings as usize, e.rows());
    assert!((0.05..0.5).contains(&same.outlier_fraction), "{same:?}");
    let ratio = same.mean_residual_norm / same.trained_residual_norm;
    assert!((0.7..1.3).contains(&ratio), "{same:?}");
    let k0 = idx.info().unwrap().num_centroids;
    let mut w = idx.writer().unwrap();
    w.push(b.ids.clone(), b.docs.view()).unwrap();
    let ci = w.commit(&no_cancel(), &|_| {}).unwrap();
    assert!(ci.new_centroids > 0, "{ci:?}");
    let info = idx.info().unwrap();
    assert_eq!(info.num_centroids, k0 + ci.new_centroids);
    // A new distribution: most of it is outliers, and the drift counters say so.
    assert_eq!(info.drift.embeddings as usize, e.rows() + b.docs.rows());
    assert!(
        info.drift.outlier_fraction > same.outlier_fraction + 0.2,
        "{:?}",
        info.drift
    );
    // Queries about the new documents find them.
    let q = b.queries(3, 10, 8);
    let truth = exact_topk(q.view(), b.docs.view(), &b.ids, 1);
    let res = search_ids(&idx, &q, &SearchParams::new(10), None);
    let found = res
        .iter()
        .zip(&truth)
        .filter(|(r, t)| r.contains(&t[0].0))
        .count();
    assert!(found >= 9, "{found}/10");
    let re = PlaidIndex::open(t.path()).unwrap();
    assert_eq!(re.info().unwrap().num_centroids, info.num_centroids);
    assert_eq!(re.info().unwrap().drift, info.drift);
    // Rebuild retrains: drift starts over.
    re.rebuild(None, &no_cancel(), &|_| {}).unwrap();
    assert_eq!(re.info().unwrap().drift.embeddings, 0);
}

#[test]
fn rebuild_compacts_and_keeps_ids() {
    let t = TempDir::new("rebuild");
    let c = Corpus::new(8, 120, DIM, 5, 20);
    let idx = build(t.path(), &c, 0..80);
    let (ids2, e2) = c.slice(80..120);
    let mut w = idx.writer().unwrap();
    w.push(ids2, e2.view()).unwrap();
    w.commit(&no_cancel(), &|_| {}).unwrap();
    let dead: Vec<String> = (0..120).step_by(7).map(|i| format!("doc-{i}")).collect();
    idx.delete(&dead).unwrap();
    let before = idx.info().unwrap();
    let ci = idx
        .rebuild(
            Some(&IndexOptions {
                nbits: 4,
                num_centroids: Some(16),
                ..Default::default()
            }),
            &no_cancel(),
            &|_| {},
        )
        .unwrap();
    assert!(ci.trained);
    let after = idx.info().unwrap();
    assert_eq!(
        (
            after.documents,
            after.deleted,
            after.segments,
            after.nbits,
            after.num_centroids
        ),
        (before.documents, 0, 1, 4, 16)
    );
    assert_eq!(after.embeddings, before.embeddings);
    for i in 0..120 {
        assert_eq!(idx.contains(&format!("doc-{i}")).unwrap(), i % 7 != 0);
    }
    let q = c.queries(2, 5, 8);
    let r = idx
        .search(q.view(), &SearchParams::new(5), None, &no_cancel())
        .unwrap();
    assert!(r
        .iter()
        .all(|h| h.len() == 5 && h.iter().all(|x| !dead.contains(&x.id))));
    let files = dir_files(t.path());
    assert_eq!(
        files.iter().filter(|f| f.starts_with("seg-")).count(),
        1,
        "{files:?}"
    );
}

#[test]
fn close_and_format_version() {
    let t = TempDir::new("close");
    let c = Corpus::new(9, 30, DIM, 5, 10);
    let idx = build(t.path(), &c, 0..30);
    let q = c.queries(1, 2, 4);
    let clone = idx.clone();
    idx.close();
    assert_eq!(
        code(clone.search(q.view(), &SearchParams::new(3), None, &no_cancel())),
        "CLOSED"
    );
    assert_eq!(code(clone.info()), "CLOSED");
    assert_eq!(code(clone.writer()), "CLOSED");
    // A manifest from a future format version.
    let path = t.path().join("MANIFEST");
    let text = std::fs::read_to_string(&path).unwrap();
    let (_, json) = text.split_once('\n').unwrap();
    let (now, next) = (FORMAT_VERSION, FORMAT_VERSION + 1);
    let json = json.replace(
        &format!("\"format_version\":{now}"),
        &format!("\"format_version\":{next}"),
    );
    let crc = crc32(format!("{next}\n{json}").as_bytes());
    std::fs::write(&path, format!("PLAID-MANIFEST {next} {crc:08x}\n{json}")).unwrap();
    let e = PlaidIndex::open(t.path()).err().unwrap();
    assert_eq!(e.code(), "INDEX_FORMAT_UNSUPPORTED");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("version {next}"))
            && msg.contains(&format!("versions {OLDEST_SUPPORTED_FORMAT} to {now}")),
        "{msg}"
    );
}

fn crc32(b: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bytes_per_embedding_at_dim_128() {
    let c = Corpus::new(10, 40, 128, 10, 20);
    // Per token: 2 bytes of code, dim·nbits/8 of residual, 4 of stored inverse norm.
    for (nbits, expect) in [(2u8, 38.0), (4, 70.0)] {
        let t = TempDir::new("bytes");
        let idx = build_index(
            t.path(),
            IndexOptions {
                nbits,
                num_centroids: Some(16),
                ..Default::default()
            },
            c.ids.clone(),
            c.docs.view(),
        );
        let i = idx.info().unwrap();
        assert_eq!(i.payload_bytes as f64 / i.embeddings as f64, expect);
        assert!(i.ivf_bytes < i.embeddings * 4 + 17 * 8);
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<PlaidIndex>();
    send::<Writer>();
    send_sync::<PlaidError>();
}

fn fields_of(i: usize) -> DocumentFields {
    DocumentFields {
        text: (!i.is_multiple_of(5)).then(|| format!("document {i} — ünïcode text")),
        metadata: (!i.is_multiple_of(7)).then(|| {
            format!(
                r#"{{"parity":"{}","n":{i},"tags":["t{}"]}}"#,
                if i.is_multiple_of(2) { "even" } else { "odd" },
                i % 3
            )
        }),
    }
}

#[test]
fn stored_documents_and_filters() {
    let t = TempDir::new("fields");
    let c = Corpus::new(21, 120, DIM, 5, 12);
    let idx = PlaidIndex::create(t.path(), opts(32), false).unwrap();
    let mut w = idx.writer().unwrap();
    // Two pushes: one with fields, one without (the transaction mixes both).
    let (ids_a, e_a) = c.slice(0..80);
    let fields: Vec<DocumentFields> = (0..80).map(fields_of).collect();
    w.push_documents(ids_a, e_a.view(), Some(&fields)).unwrap();
    let (ids_b, e_b) = c.slice(80..120);
    w.push(ids_b, e_b.view()).unwrap();
    // Bad fields change nothing.
    let (ids_c, e_c) = c.slice(0..1);
    let bad = [DocumentFields {
        text: None,
        metadata: Some("[1,2]".into()),
    }];
    let ids_c: Vec<String> = ids_c.iter().map(|i| format!("{i}-x")).collect();
    assert_eq!(
        code(w.push_documents(ids_c.clone(), e_c.view(), Some(&bad))),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        code(w.push_documents(ids_c, e_c.view(), Some(&[]))),
        "INVALID_ARGUMENT"
    );
    assert_eq!(w.pending(), 120);
    w.commit(&no_cancel(), &|_| {}).unwrap();
    assert!(idx.info().unwrap().stored_bytes > 0);

    let check = |idx: &PlaidIndex| {
        let want: Vec<String> = c.ids.clone();
        let got = idx.documents(&want).unwrap();
        for (i, g) in got.iter().enumerate() {
            let g = g.as_ref().unwrap();
            if i < 80 {
                assert_eq!(g, &fields_of(i), "document {i}");
            } else {
                assert_eq!(g, &DocumentFields::default());
            }
        }
        assert_eq!(idx.documents(&ids(&["nope"])).unwrap(), vec![None]);
        // Filters select exactly the documents whose metadata matches.
        let f = Filter::parse(r#"{"parity":"even","n":{"$lt":40}}"#).unwrap();
        let sel = idx.select(&f).unwrap();
        let expect: Vec<String> = (0..40)
            .filter(|i| i % 2 == 0 && i % 7 != 0)
            .map(|i| c.ids[i].clone())
            .collect();
        assert_eq!(sel, expect);
        // A filtered search equals the subset search over the selected ids.
        let q = c.queries(3, 4, 6);
        let p = SearchParams::new(5);
        let a = idx
            .search_where(q.view(), &p, None, Some(&f), &no_cancel())
            .unwrap();
        let b = idx.search(q.view(), &p, Some(&sel), &no_cancel()).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|r| r.iter().all(|h| sel.contains(&h.id))));
        // Filter ∩ subset.
        let sub: Vec<String> = c.ids[..20].to_vec();
        let r = idx
            .search_where(q.view(), &p, Some(&sub), Some(&f), &no_cancel())
            .unwrap();
        assert!(r.iter().all(|hits| hits
            .iter()
            .all(|h| sel.contains(&h.id) && sub.contains(&h.id))));
        // Documents without metadata match `$exists: false`.
        let none = idx
            .select(&Filter::parse(r#"{"parity":{"$exists":false}}"#).unwrap())
            .unwrap();
        assert_eq!(none.len(), (0..80).filter(|i| i % 7 == 0).count() + 40);
    };
    check(&idx);
    drop(idx);
    let idx = PlaidIndex::open(t.path()).unwrap();
    check(&idx);
    // Deleted documents have no fields; rebuild keeps the others' fields.
    idx.delete(&ids(&[c.ids[3].as_str()])).unwrap();
    assert_eq!(idx.documents(&[c.ids[3].clone()]).unwrap(), vec![None]);
    idx.rebuild(None, &no_cancel(), &|_| {}).unwrap();
    let after = idx.documents(&c.ids[..10]).unwrap();
    for (i, d) in after.iter().enumerate() {
        if i == 3 {
            assert!(d.is_none());
        } else {
            assert_eq!(d.as_ref().unwrap(), &fields_of(i));
        }
    }
    assert_eq!(
        code(Filter::parse(r#"{"a":{"$regex":"x"}}"#)),
        "INVALID_ARGUMENT"
    );
}

/// Many one-document commits: segments are merged as they go (at most about log2 of the
/// token count), merged documents keep their embeddings, stored fields, ids and deletions,
/// and a search that probes everything still equals exact MaxSim over the stored embeddings.
#[test]
fn small_commits_merge_segments() {
    let t = TempDir::new("merge");
    let c = Corpus::new(12, 160, DIM, 4, 12);
    let idx = build(t.path(), &c, 0..100);
    let first: Vec<String> = c.ids[..100].to_vec();
    let stored = idx.reconstruct(&first).unwrap();
    let mut most = 0;
    let mut merges = 0;
    for i in 100..160 {
        let (ids, e) = c.slice(i..i + 1);
        let mut w = idx.writer().unwrap();
        w.push_documents(ids, e.view(), Some(&[fields_of(i)]))
            .unwrap();
        if i == 130 {
            // A deletion in the same transaction as a merge.
            w.delete(&common::ids(&["doc-120", "doc-5"])).unwrap();
        }
        let ci = w.commit(&no_cancel(), &|_| {}).unwrap();
        merges += usize::from(ci.merged_segments > 0);
        let info = idx.info().unwrap();
        most = most.max(info.segments);
        let seg_files = dir_files(t.path())
            .iter()
            .filter(|f| f.starts_with("seg-"))
            .count();
        assert_eq!(
            seg_files, info.segments,
            "unreferenced segments are deleted"
        );
    }
    assert!(merges >= 20, "{merges} merges");
    assert!(most <= 8, "{most} segments at most");
    let info = idx.info().unwrap();
    // Merges drop deleted documents they cover (here both: the tail merges reach the first
    // segment).
    assert_eq!((info.documents, info.deleted), (158, 0));
    // The first 100 documents were never rewritten differently: same decompressed rows.
    let live_first: Vec<String> = first.iter().filter(|i| *i != "doc-5").cloned().collect();
    let again = idx.reconstruct(&live_first).unwrap();
    let expect: Vec<Vec<f32>> = (0..100)
        .filter(|&i| i != 5)
        .map(|i| stored.item(i).to_vec())
        .collect();
    assert_eq!(again, Embeddings::from_items(DIM, expect));
    assert!(!idx.contains("doc-120").unwrap() && !idx.contains("doc-5").unwrap());
    for i in 101..160 {
        let id = format!("doc-{i}");
        assert_eq!(
            idx.documents(std::slice::from_ref(&id)).unwrap()[0],
            (i != 120).then(|| fields_of(i)),
            "{id}"
        );
    }
    // Everything probed, no pruning: exact MaxSim over the reconstructed live documents.
    let live: Vec<String> = c
        .ids
        .iter()
        .filter(|i| *i != "doc-5" && *i != "doc-120")
        .cloned()
        .collect();
    let rows = idx.reconstruct(&live).unwrap();
    let q = c.queries(4, 6, 6);
    let all = SearchParams {
        n_probe: Some(1 << 20),
        centroid_score_threshold: Some(f32::NEG_INFINITY),
        candidates: Some(1000),
        exact_candidates: Some(1000),
        ..SearchParams::new(7)
    };
    let want: Vec<Vec<String>> = exact_topk(q.view(), rows.view(), &live, 7)
        .into_iter()
        .map(|r| r.into_iter().map(|x| x.0).collect())
        .collect();
    assert_eq!(search_ids(&idx, &q, &all, None), want);
    // A deleted id added again lives in the newest segment, possibly merged with the old copy.
    let (_, e) = c.slice(5..6);
    let mut w = idx.writer().unwrap();
    w.push(common::ids(&["doc-5"]), e.view()).unwrap();
    w.commit(&no_cancel(), &|_| {}).unwrap();
    let re = PlaidIndex::open(t.path()).unwrap();
    assert!(re.contains("doc-5").unwrap());
    assert_eq!(re.info().unwrap().documents, 159);
    assert_eq!(
        re.reconstruct(&common::ids(&["doc-5"])).unwrap(),
        Embeddings::from_items(DIM, vec![stored.item(5).to_vec()])
    );
    // Compaction: deletions, then one segment without them; the same search results and
    // embeddings, without retraining.
    let dead: Vec<String> = (10..40).map(|i| format!("doc-{i}")).collect();
    assert_eq!(re.delete(&dead).unwrap(), 30);
    let live: Vec<String> = c
        .ids
        .iter()
        .filter(|i| *i != "doc-120" && !dead.contains(i))
        .cloned()
        .collect();
    let rows = re.reconstruct(&live).unwrap();
    let before = search_ids(&re, &q, &all, None);
    let deleted = re.info().unwrap().deleted;
    assert!(deleted >= 30);
    // An aborted compaction, at any poll, changes nothing.
    let files0 = dir_files(t.path());
    let info0 = re.info().unwrap();
    for stop_after in [0, 1, 2] {
        let cancel = CancelToken::cancelled_after(stop_after);
        assert_eq!(code(re.compact(&cancel, &|_| {})), "ABORTED");
        assert_eq!(dir_files(t.path()), files0);
        assert_eq!(re.info().unwrap(), info0);
    }
    let ci = re.compact(&no_cancel(), &|_| {}).unwrap();
    assert_eq!(
        (ci.reclaimed as u64, ci.trained, ci.added),
        (deleted, false, 0)
    );
    let info = re.info().unwrap();
    assert_eq!(
        (info.documents, info.deleted, info.segments),
        (live.len() as u64, 0, 1)
    );
    assert_eq!(re.reconstruct(&live).unwrap(), rows);
    assert_eq!(search_ids(&re, &q, &all, None), before);
    assert!(dead.iter().all(|d| !re.contains(d).unwrap()));
    let files = dir_files(t.path());
    assert!(!files.iter().any(|f| f.starts_with("tomb-")), "{files:?}");
    // Nothing left to compact: no new generation.
    assert_eq!(
        re.compact(&no_cancel(), &|_| {}).unwrap().generation,
        info.generation
    );
    let again = PlaidIndex::open(t.path()).unwrap();
    assert_eq!(again.info().unwrap(), info);
    assert_eq!(search_ids(&again, &q, &all, None), before);
}

/// Once deleted documents are as many as live ones, the deleting commit compacts: deleted
/// space never exceeds live space. Deleting everything leaves a trained, empty index.
#[test]
fn half_deleted_compacts_automatically() {
    let t = TempDir::new("autocompact");
    let c = Corpus::new(13, 40, DIM, 4, 12);
    let idx = build(t.path(), &c, 0..40);
    let q = c.queries(2, 3, 5);
    let p = SearchParams {
        n_probe: Some(32),
        centroid_score_threshold: Some(f32::NEG_INFINITY),
        ..SearchParams::new(5)
    };
    assert_eq!(idx.delete(&c.ids[..19]).unwrap(), 19);
    assert_eq!(idx.info().unwrap().deleted, 19);
    let before = search_ids(&idx, &q, &p, None);
    let rows = idx.reconstruct(&c.ids[20..]).unwrap();
    assert_eq!(idx.delete(&c.ids[19..20]).unwrap(), 1);
    let info = idx.info().unwrap();
    assert_eq!((info.documents, info.deleted, info.segments), (20, 0, 1));
    let after = search_ids(&idx, &q, &p, None);
    for (b, a) in before.iter().zip(&after) {
        let kept: Vec<&String> = b.iter().filter(|id| *id != &c.ids[19]).collect();
        assert_eq!(kept, a.iter().take(kept.len()).collect::<Vec<_>>());
    }
    assert_eq!(idx.reconstruct(&c.ids[20..]).unwrap(), rows);
    assert_eq!(idx.delete(&c.ids[20..]).unwrap(), 20);
    let info = idx.info().unwrap();
    assert_eq!((info.documents, info.deleted, info.segments), (0, 0, 0));
    assert!(info.dim.is_some());
    let empty = search_ids(&idx, &q, &p, None);
    assert!(empty.iter().all(|r| r.is_empty()));
    let (ids, e) = c.slice(0..3);
    let mut w = idx.writer().unwrap();
    w.push(ids, e.view()).unwrap();
    assert!(!w.commit(&no_cancel(), &|_| {}).unwrap().trained);
    assert_eq!(
        PlaidIndex::open(t.path())
            .unwrap()
            .info()
            .unwrap()
            .documents,
        3
    );
}

/// A search returns min(k, live documents in scope) hits however sparse the IVF lists are:
/// with most documents deleted, and with so many centroids that one probe finds too few.
#[test]
fn sparse_indexes_still_return_k_hits() {
    let t = TempDir::new("sparse");
    let c = Corpus::new(21, 300, DIM, 4, 12);
    let idx = build(t.path(), &c, 0..300);
    let q = c.queries(12, 5, 11);
    let deleted: Vec<String> = c.ids[2..].to_vec();
    assert_eq!(idx.delete(&deleted).unwrap(), 298);
    for hits in idx
        .search(q.view(), &SearchParams::new(10), None, &no_cancel())
        .unwrap()
    {
        let mut got: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        got.sort_unstable();
        assert_eq!(got, vec![c.ids[0].as_str(), c.ids[1].as_str()]);
    }

    // One token per document, 1,024 centroids for 400 tokens: a one-token query's best
    // centroid holds about one document, so one probe alone would find fewer than k.
    let t2 = TempDir::new("sparse-probe");
    let one = Corpus::new(22, 400, DIM, 1, 1);
    let idx = PlaidIndex::create(t2.path(), opts(1024), false).unwrap();
    let mut w = idx.writer().unwrap();
    w.push(one.ids.clone(), one.docs.view()).unwrap();
    w.commit(&no_cancel(), &|_| {}).unwrap();
    let query = Embeddings::from_items(DIM, vec![one.docs.item(0).to_vec()]);
    let p = SearchParams {
        candidates: Some(100),
        exact_candidates: Some(100),
        ..SearchParams::new(10)
    };
    let hits = idx.search(query.view(), &p, None, &no_cancel()).unwrap();
    assert_eq!(hits[0].len(), 10);
    assert_eq!(hits[0][0].id, one.ids[0]);
}

/// `refresh()` right after the handle's own commits finds nothing new: the manifest on disk
/// reads back equal to the one the commit published (its float counters used to come back one
/// ulp off for about one index in ten).
#[test]
fn refresh_after_own_commit_is_a_no_op() {
    for seed in 0..10 {
        let t = TempDir::new("refresh-own");
        let c = Corpus::new(seed, 40, DIM, 3, 10);
        let idx = build(t.path(), &c, 0..20);
        let (ids, e) = c.slice(20..40);
        let mut w = idx.writer().unwrap();
        w.push(ids, e.view()).unwrap();
        w.commit(&no_cancel(), &|_| {}).unwrap();
        assert!(!idx.refresh().unwrap(), "seed {seed}");
    }
}

/// An upsert replaces live documents with the same ids in one transaction; a failed upsert
/// leaves the transaction as it was (its deletions unstaged too).
#[test]
fn upsert_replaces_and_a_failed_upsert_changes_nothing() {
    let t = TempDir::new("upsert");
    let c = Corpus::new(9, 60, DIM, 5, 20);
    let idx = build(t.path(), &c, 0..40);
    let mut w = idx.writer().unwrap();
    // doc-0..doc-9 get the embeddings (and text) of documents 40..50.
    let (_, fresh) = c.slice(40..50);
    let ids: Vec<String> = c.ids[0..10].to_vec();
    let fields: Vec<DocumentFields> = (0..10).map(fields_of).collect();
    w.upsert_documents(ids.clone(), fresh.view(), Some(&fields))
        .unwrap();
    // A failing upsert (a duplicate id within the call) stages nothing: doc-10 stays live.
    let (_, two) = c.slice(50..52);
    let dup = vec![c.ids[10].clone(), c.ids[10].clone()];
    assert_eq!(
        code(w.upsert_documents(dup, two.view(), None)),
        "INVALID_ARGUMENT"
    );
    let ci = w.commit(&no_cancel(), &|_| {}).unwrap();
    assert_eq!((ci.added, ci.deleted), (10, 10));
    let info = idx.info().unwrap();
    assert_eq!(info.documents, 40);
    assert_eq!(idx.documents(&ids[..1]).unwrap()[0], Some(fields_of(0)));
    // The replaced documents are searched with their new embeddings: doc-i now holds the
    // embeddings of document 40 + i, so that document's query finds it first.
    let exact = SearchParams {
        exact_candidates: Some(40),
        candidates: Some(40),
        n_probe: Some(32),
        ..SearchParams::new(1)
    };
    let q = Embeddings::from_items(DIM, vec![c.docs.item(43).to_vec()]);
    let hits = idx.search(q.view(), &exact, None, &no_cancel()).unwrap();
    assert_eq!(hits[0][0].id, c.ids[3]);
    assert!(idx.documents(&c.ids[10..11]).unwrap()[0].is_some());
}
