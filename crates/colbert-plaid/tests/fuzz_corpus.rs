#![allow(clippy::unwrap_used)]
//! Replays every committed fuzz input — the minimised corpora `fuzz/corpus/<target>/` and the
//! crash reproducers `fuzz/regressions/<target>/` — through the same harness functions the
//! `cargo fuzz` targets call (`colbert_plaid::fuzzing`), on stable, as part of `cargo test`.
//! A harness panics when the engine panics or breaks an invariant; every input must pass.
//!
//! `write_seed_corpus` (ignored) regenerates the real-input seeds from an index built here:
//! `cargo test -p colbert-plaid --test fuzz_corpus -- --ignored write_seed_corpus`.
mod common;

use std::path::{Path, PathBuf};

use colbert_plaid::fuzzing;
use colbert_plaid::*;
use common::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Runs `harness` on every file of the target's corpus and regressions; fails listing the
/// inputs that panicked.
fn replay(target: &str, harness: fn(&[u8])) {
    let mut files = Vec::new();
    for sub in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(fuzz_dir().join(sub).join(target)) {
            files.extend(rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no committed inputs for {target}");
    let failed: Vec<String> = files
        .iter()
        .filter(|p| {
            let data = std::fs::read(p).unwrap();
            std::panic::catch_unwind(|| harness(&data)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: inputs that panic: {failed:#?}"
    );
}

#[test]
fn manifest_corpus() {
    replay("manifest", fuzzing::manifest);
}

#[test]
fn segment_corpus() {
    replay("segment", fuzzing::segment);
}

#[test]
fn filter_corpus() {
    replay("filter", fuzzing::filter);
}

#[test]
fn stored_fields_corpus() {
    replay("stored_fields", fuzzing::stored_fields);
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

/// Real inputs: the MANIFEST and every file of small indexes (nbits 1, 2 and 4; stored text and
/// metadata; several segments; deletions), real filters and metadata, and stored fields.
#[test]
#[ignore]
fn write_seed_corpus() {
    for nbits in [1u8, 2, 4] {
        let t = TempDir::new("fuzz-seeds");
        let c = Corpus::new(7 + nbits as u64, 24, 16, 2, 8);
        let idx = PlaidIndex::create(
            t.path(),
            IndexOptions {
                nbits,
                num_centroids: Some(8),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        for (i, r) in [0..16, 16..20, 20..24].into_iter().enumerate() {
            let (ids, e) = c.slice(r);
            let fields: Vec<DocumentFields> = ids
                .iter()
                .enumerate()
                .map(|(j, id)| DocumentFields {
                    text: (i != 1).then(|| format!("text of {id} ✓")),
                    metadata: (j % 3 != 2).then(|| {
                        format!(
                            r#"{{"id":"{id}","n":{j},"tags":["a","b{i}"],"src":{{"kind":"pdf"}}}}"#
                        )
                    }),
                })
                .collect();
            let mut w = idx.writer().unwrap();
            w.push_documents(ids, e.view(), Some(&fields)).unwrap();
            w.commit(&no_cancel(), &|_| {}).unwrap();
            if i == 1 {
                idx.delete(&c.ids[..2]).unwrap();
            }
        }
        for (target, name, data) in fuzzing::seeds_from_index(t.path()).unwrap() {
            write(target, &format!("nbits{nbits}-{name}"), &data);
        }
    }
    let metadata = [
        r#"{"lang":"en","year":2021,"tags":["a","b"],"src":{"kind":"pdf"},"n":null}"#,
        r#"{"lang":"fr","year":1999.5,"tags":[],"src":{"kind":["pdf","html"]}}"#,
        r#"{"a":{"b":{"c":[1,2,{"d":"x"}]}},"e":true,"f":-0.0,"g":"ü\u0000"}"#,
        r#"{}"#,
        r#"not json"#,
        r#"[1,2]"#,
    ];
    let filters = [
        r#"{"lang":"en"}"#,
        r#"{"tags":"b"}"#,
        r#"{"tags":["a","b"]}"#,
        r#"{"year":{"$gte":2020,"$lt":2022}}"#,
        r#"{"year":{"$gt":"2000"}}"#,
        r#"{"lang":{"$in":["fr","en"]}}"#,
        r#"{"lang":{"$nin":["fr","en"]}}"#,
        r#"{"missing":{"$ne":1}}"#,
        r#"{"n":null}"#,
        r#"{"n":{"$exists":true}}"#,
        r#"{"src.kind":"pdf"}"#,
        r#"{"a.b.c":{"$eq":1}}"#,
        r#"{"$or":[{"lang":"fr"},{"year":2021}]}"#,
        r#"{"$and":[{"lang":"en"},{"year":{"$lte":2021}}]}"#,
        r#"{"$not":{"$not":{"lang":"en"}}}"#,
        r#"{"lang":"en","year":2021}"#,
        r#"{}"#,
        r#"{"$foo":1}"#,
        r#"{"a..b":1}"#,
        r#"{"a":{"$eq":1,"b":2}}"#,
    ];
    for (i, f) in filters.iter().enumerate() {
        let mut data = f.as_bytes().to_vec();
        for m in &metadata {
            data.push(0xFF);
            data.extend_from_slice(m.as_bytes());
        }
        write("filter", &format!("{i:02}"), &data);
    }
    // stored_fields: computed offsets (bit 3) over texts/metadata, and raw sections.
    let docs: [&[&str]; 3] = [
        &[
            "hello",
            r#"{"a":1}"#,
            "",
            "",
            "ünï",
            r#"{"b":[1,{"c":null}]}"#,
        ],
        &["x", "not json", "y", "[1]", "z", r#"{"a""#],
        &["", "", "", ""],
    ];
    for (i, d) in docs.iter().enumerate() {
        let data = join_ff(8 | (d.len() / 2) as u8, d);
        write("stored_fields", &format!("computed{i}"), &data);
    }
    let offs = |v: &[u64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let raw: [(u8, Vec<Vec<u8>>); 2] = [
        (
            2,
            vec![
                offs(&[0, 2, 5]),
                b"hiyou".to_vec(),
                offs(&[0, 0, 7]),
                br#"{"a":1}"#.to_vec(),
            ],
        ),
        (
            2,
            vec![
                offs(&[0, 3, 2]),
                b"abc".to_vec(),
                offs(&[0, 9, 7]),
                br#"{"a":1}"#.to_vec(),
            ],
        ),
    ];
    for (i, (n, parts)) in raw.iter().enumerate() {
        let mut data = vec![*n];
        for (j, p) in parts.iter().enumerate() {
            if j > 0 {
                data.push(0xFF);
            }
            data.extend_from_slice(p);
        }
        write("stored_fields", &format!("raw{i}"), &data);
    }
}

fn join_ff(head: u8, parts: &[&str]) -> Vec<u8> {
    let mut data = vec![head];
    for (j, p) in parts.iter().enumerate() {
        if j > 0 {
            data.push(0xFF);
        }
        data.extend_from_slice(p.as_bytes());
    }
    data
}
