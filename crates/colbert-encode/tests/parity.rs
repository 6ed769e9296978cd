//! Parity with PyLate on the committed fixtures (made by tools/make_fixtures.py with PyLate).
//! Tokenization needs no ONNX Runtime; the encode test runs when ORT_DYLIB_PATH names the library
//! (`npm test` sets it) and is skipped with a message otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use colbert_encode::config::{ConfigOverrides, ModelFolder, Precision};
use colbert_encode::tokenize::{Kind, TextTokenizer};
use colbert_encode::{Encoder, LoadOptions};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../__test__/fixtures")
}

fn golden(model: &str) -> (Vec<String>, Value) {
    let dir = fixtures().join(model).join("golden");
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).expect("golden file"))
            .expect("golden JSON")
    };
    let manifest = read("manifest.json");
    let texts: Vec<String> = serde_json::from_value(read("texts.json")).expect("texts");
    (texts, manifest)
}

fn overrides(case: &Value) -> ConfigOverrides {
    let o = &case["overrides"];
    ConfigOverrides {
        do_query_expansion: o["do_query_expansion"].as_bool(),
        attend_to_expansion_tokens: o["attend_to_expansion_tokens"].as_bool(),
        ..Default::default()
    }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn token_ids_and_masks_equal_pylate() {
    for model in ["tiny-modernbert", "tiny-bert"] {
        let (texts, manifest) = golden(model);
        for case in manifest["cases"].as_array().expect("cases") {
            let folder =
                ModelFolder::open(&fixtures().join(model), Precision::Auto, &overrides(case))
                    .expect("model");
            let tok = TextTokenizer::new(&folder.tokenizer, &folder.config).expect("tokenizer");
            let kind = if case["is_query"].as_bool() == Some(true) {
                Kind::Query
            } else {
                Kind::Document
            };
            for (text, item) in texts.iter().zip(case["items"].as_array().expect("items")) {
                let t = tok.tokenize(text, kind).expect("tokenize");
                let name = case["name"].as_str().unwrap_or_default();
                assert_eq!(
                    t.input_ids,
                    ids(&item["input_ids"]),
                    "{model}/{name}: ids of {text:?}"
                );
                assert_eq!(
                    t.attention_mask,
                    ids(&item["attention_mask"]),
                    "{model}/{name}: mask of {text:?}"
                );
                assert_eq!(
                    t.keep.iter().filter(|&&k| k).count() as u64,
                    item["rows"].as_u64().expect("rows"),
                    "{model}/{name}: kept rows of {text:?}"
                );
            }
        }
    }
}

#[test]
fn embeddings_equal_pylate() {
    let Ok(lib) = std::env::var("ORT_DYLIB_PATH") else {
        eprintln!("skipped: set ORT_DYLIB_PATH to an absolute libonnxruntime path (npm test does)");
        return;
    };
    colbert_encode::runtime::init(Path::new(&lib)).expect("ONNX Runtime loads");
    for model in ["tiny-modernbert", "tiny-bert"] {
        let (texts, manifest) = golden(model);
        let dim = manifest["dim"].as_u64().expect("dim") as usize;
        for case in manifest["cases"].as_array().expect("cases") {
            let options = LoadOptions {
                precision: Precision::Fp32,
                overrides: overrides(case),
                ..Default::default()
            };
            let encoder = Arc::new(Encoder::load(&fixtures().join(model), &options).expect("load"));
            let kind = if case["is_query"].as_bool() == Some(true) {
                Kind::Query
            } else {
                Kind::Document
            };
            let out = encoder.encode(texts.clone(), kind, 5).expect("encode");
            let bytes = std::fs::read(
                fixtures()
                    .join(model)
                    .join("golden")
                    .join(case["embeddings_file"].as_str().expect("file")),
            )
            .expect("embeddings");
            let want: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let mut worst = 0.0f32;
            for (i, item) in case["items"].as_array().expect("items").iter().enumerate() {
                let (at, rows) = (
                    item["row_offset"].as_u64().expect("offset") as usize,
                    item["rows"].as_u64().expect("rows") as usize,
                );
                let got = out.item(i);
                assert_eq!(got.len(), rows * dim, "{model}: rows of text {i}");
                for (a, b) in got.iter().zip(&want[at * dim..(at + rows) * dim]) {
                    worst = worst.max((a - b).abs());
                }
            }
            assert!(worst <= 1e-4, "{model}/{}: max |Δ| {worst}", case["name"]);
        }
    }
}
