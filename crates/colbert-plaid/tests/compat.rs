#![allow(clippy::unwrap_used)]
//! Format compatibility: indexes written by earlier releases keep opening and keep returning the
//! same results. Each `tests/fixtures/format-<N>/` folder holds an index made by the release
//! that wrote format N, the query embeddings (`queries.f32` + `queries.offsets.u32`) and the
//! results that release returned (`expected.json`). The fixture is made by the ignored test
//! `make_fixture` below, run once with the release that introduces a format:
//!
//! ```text
//! PLAID_FIXTURE_OUT=crates/colbert-plaid/tests/fixtures/format-2 \
//!   cargo test -p colbert-plaid --test compat -- --ignored make_fixture
//! ```
//!
//! The index has two segments (a build and an upsert), tombstones (deletes and replaced ids)
//! and stored text and metadata, so every section of the format is exercised.
mod common;
use std::path::{Path, PathBuf};

use colbert_plaid::*;
use common::*;

const FIXTURE_FORMATS: &[u32] = &[2];

fn fixture_dir(format: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(format!("format-{format}"))
}

/// The settings every fixture is searched with: the defaults, and a wide search that scores
/// every candidate exactly (so its top-10 is exact MaxSim over the decoded vectors whatever
/// later releases change in the approximate stages).
fn settings() -> Vec<(&'static str, SearchParams)> {
    vec![
        ("default", SearchParams::new(10)),
        (
            "wide",
            SearchParams {
                n_probe: Some(8),
                centroid_score_threshold: Some(f32::NEG_INFINITY),
                candidates: Some(1000),
                exact_candidates: Some(1000),
                ..SearchParams::new(10)
            },
        ),
    ]
}

fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn write_u32(path: &Path, v: &[u32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_queries(dir: &Path, dim: usize) -> Embeddings {
    let data: Vec<f32> = std::fs::read(dir.join("queries.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let offsets: Vec<u32> = std::fs::read(dir.join("queries.offsets.u32"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let items = offsets
        .windows(2)
        .map(|w| data[w[0] as usize * dim..w[1] as usize * dim].to_vec())
        .collect();
    Embeddings::from_items(dim, items)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// `{"<setting>": [[["id", score], …] per query]}` as JSON.
fn results_json(idx: &PlaidIndex, queries: &Embeddings) -> String {
    let mut parts = Vec::new();
    for (name, p) in settings() {
        let res = idx.search(queries.view(), &p, None, &no_cancel()).unwrap();
        let per_query: Vec<String> = res
            .iter()
            .map(|hits| {
                let h: Vec<String> = hits
                    .iter()
                    .map(|h| format!("[\"{}\",{:.6}]", h.id, h.score))
                    .collect();
                format!("[{}]", h.join(","))
            })
            .collect();
        parts.push(format!("\"{name}\":[\n{}\n]", per_query.join(",\n")));
    }
    format!("{{{}}}\n", parts.join(",\n"))
}

/// Per setting: its name and, per query, the (id, score) hits.
type Results = Vec<(String, Vec<Vec<(String, f32)>>)>;

/// Reads `results_json`'s output back, in the order of [`settings`].
fn parse_results(text: &str) -> Results {
    let mut by_name: std::collections::HashMap<String, Vec<Vec<(String, f32)>>> =
        serde_json::from_str(text).unwrap();
    settings()
        .into_iter()
        .map(|(name, _)| (name.to_string(), by_name.remove(name).unwrap()))
        .collect()
}

fn fields_for(ids: &[String], tag: &str) -> Vec<DocumentFields> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| DocumentFields {
            text: Some(format!("text of {id} ({tag})")),
            metadata: Some(format!("{{\"n\":{i},\"tag\":\"{tag}\"}}")),
        })
        .collect()
}

#[test]
#[ignore = "writes a fixture; run once with the release that introduces a format"]
fn make_fixture() {
    let out = PathBuf::from(std::env::var("PLAID_FIXTURE_OUT").unwrap());
    let dim = 64;
    let c = Corpus::new(2026, 160, dim, 8, 40);
    // Replaces an earlier fixture in `out`, and nothing else: any other entry stops it.
    const ENTRIES: [&str; 4] = [
        "index",
        "expected.json",
        "queries.f32",
        "queries.offsets.u32",
    ];
    if let Ok(entries) = std::fs::read_dir(&out) {
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            assert!(
                ENTRIES.contains(&name.as_str()),
                "{out:?} holds {name}: not a fixture"
            );
        }
    }
    let _ = std::fs::remove_dir_all(out.join("index"));
    let index_dir = out.join("index");
    {
        let idx = PlaidIndex::create(
            &index_dir,
            IndexOptions {
                nbits: 4,
                num_centroids: Some(64),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        let (ids, docs) = c.slice(0..140);
        let mut w = idx.writer().unwrap();
        w.push_documents(ids.clone(), docs.view(), Some(&fields_for(&ids, "build")))
            .unwrap();
        w.commit(&no_cancel(), &|_| {}).unwrap();
        // A second segment: 20 new documents and 10 replaced ones (upsert), then deletes.
        let (new_ids, new_docs) = c.slice(130..160);
        let mut w = idx.writer().unwrap();
        w.upsert_documents(
            new_ids.clone(),
            new_docs.view(),
            Some(&fields_for(&new_ids, "upsert")),
        )
        .unwrap();
        w.commit(&no_cancel(), &|_| {}).unwrap();
        let gone: Vec<String> = (0..5).map(|i| format!("doc-{}", i * 7)).collect();
        idx.delete(&gone).unwrap();
        idx.close();
    }
    let queries = c.queries(7, 12, 16);
    write_f32(&out.join("queries.f32"), &queries.data);
    write_u32(&out.join("queries.offsets.u32"), &queries.offsets);
    let idx = PlaidIndex::open(&index_dir).unwrap();
    std::fs::write(out.join("expected.json"), results_json(&idx, &queries)).unwrap();
    idx.close();
    // Nothing but the committed files: no lock file or temporary left behind.
    for e in std::fs::read_dir(&index_dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.starts_with('.') && !name.ends_with(".tmp"), "{name}");
    }
}

/// Every fixture opens, and the same queries return the same top-10 (ids in order, scores
/// within 1e-4), before and after `compact()` rewrites it in the current format.
#[test]
fn every_fixture_format_opens_and_returns_the_same_results() {
    for &format in FIXTURE_FORMATS {
        let src = fixture_dir(format);
        let t = TempDir::new("compat");
        copy_dir(&src.join("index"), t.path());
        let expected = parse_results(&std::fs::read_to_string(src.join("expected.json")).unwrap());
        let idx = PlaidIndex::open(t.path()).unwrap();
        let dim = idx.info().unwrap().dim.unwrap();
        let queries = read_queries(&src, dim);
        let check = |idx: &PlaidIndex, when: &str| {
            for ((name, p), (ename, eq)) in settings().iter().zip(&expected) {
                assert_eq!(name, ename);
                let res = idx.search(queries.view(), p, None, &no_cancel()).unwrap();
                assert_eq!(res.len(), eq.len());
                for (qi, (hits, want)) in res.iter().zip(eq).enumerate() {
                    let got: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
                    let exp: Vec<&str> = want.iter().map(|w| w.0.as_str()).collect();
                    assert_eq!(got, exp, "format {format}, {when}, {name}, query {qi}");
                    for (h, w) in hits.iter().zip(want) {
                        assert!(
                            (h.score - w.1).abs() <= 1e-4,
                            "format {format}, {when}, {name}, query {qi}: {} vs {}",
                            h.score,
                            w.1
                        );
                    }
                }
            }
            let docs = idx.documents(&ids(&["doc-1", "doc-0", "doc-135"])).unwrap();
            assert_eq!(
                docs[0].as_ref().unwrap().text.as_deref(),
                Some("text of doc-1 (build)")
            );
            assert!(docs[1].is_none(), "doc-0 was deleted");
            assert_eq!(
                docs[2].as_ref().unwrap().text.as_deref(),
                Some("text of doc-135 (upsert)")
            );
            let f = Filter::parse(r#"{"tag":"upsert"}"#).unwrap();
            assert_eq!(idx.select(&f).unwrap().len(), 30);
        };
        check(&idx, "as written");
        assert_eq!(idx.info().unwrap().format_version, format);
        idx.compact(&no_cancel(), &|_| {}).unwrap();
        let info = idx.info().unwrap();
        assert_eq!(info.format_version, FORMAT_VERSION, "compact upgrades");
        assert_eq!(info.segments, 1);
        check(&idx, "after compact");
        drop(idx);
        let idx = PlaidIndex::open(t.path()).unwrap();
        check(&idx, "reopened after compact");
    }
}
