//! Token pooling against PyLate's own output: `__test__/fixtures/pool/` holds PyLate's unpooled
//! document embeddings (tiny models, the stand-in, synthetic rows with exact ties) and what
//! PyLate's `pool_embeddings_hierarchical` made of them (`tools/make_pool_golden.py`). Every
//! document must pool to the same number of rows, in the same order, within 1e-5.

use std::path::PathBuf;

use colbert_core::{pool, CancelToken, EmbeddingsView, PoolOptions};
use serde_json::Value;

fn fixture() -> PathBuf {
    std::env::var_os("POOL_FIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../__test__/fixtures/pool")
        })
}

fn read_f32(path: PathBuf) -> Vec<f32> {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn offsets(rows: &Value) -> Vec<u32> {
    let mut out = vec![0u32];
    for r in rows.as_array().expect("rows") {
        out.push(out.last().copied().unwrap_or(0) + r.as_u64().expect("row count") as u32);
    }
    out
}

#[test]
fn pooling_matches_pylate_on_its_own_embeddings() {
    let dir = fixture();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let mut checked = 0usize;
    for set in manifest["sets"].as_array().expect("sets") {
        let name = set["name"].as_str().unwrap_or("?");
        let dim = set["dim"].as_u64().expect("dim") as usize;
        let input_offsets = offsets(&set["input"]["rows"]);
        let input = read_f32(dir.join(set["input"]["file"].as_str().expect("file")));
        let view = EmbeddingsView::new(dim, &input_offsets, &input).expect("valid input");
        for expected in set["pooled"].as_array().expect("pooled") {
            let k = expected["pool_factor"].as_u64().expect("pool_factor") as usize;
            let want_offsets = offsets(&expected["rows"]);
            let want = read_f32(dir.join(expected["file"].as_str().expect("file")));
            let got = pool(view, PoolOptions::new(k), &CancelToken::new()).expect("pool");
            assert_eq!(got.len(), view.len());
            for d in 0..view.len() {
                let (a, b) = (want_offsets[d] as usize, want_offsets[d + 1] as usize);
                let want_rows = &want[a * dim..b * dim];
                let got_rows = got.item(d);
                assert_eq!(
                    got_rows.len() / dim,
                    b - a,
                    "{name} pool factor {k} document {d}: {} rows, PyLate {}",
                    got_rows.len() / dim,
                    b - a
                );
                let delta = got_rows
                    .iter()
                    .zip(want_rows)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(
                    delta <= 1e-5,
                    "{name} pool factor {k} document {d}: max |delta| {delta}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "the fixture holds no documents");
}
