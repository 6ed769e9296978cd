//! next-plaid on the embeddings dumped by bench/dump-embeddings.mjs; prints one JSON line per
//! phase/setting, in the shape bench/summarize-plaid.mjs reads (as bench/plaid_fastplaid.py).
//!
//!   bench-next-plaid build  <dump> <index_dir> [--nbits 4]
//!   bench-next-plaid search <dump> <index_dir> [--settings 8:4096,4:1024] [--k 10]
//! Threads: RAYON_NUM_THREADS.
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use next_plaid::{IndexConfig, MmapIndex, SearchParameters};
use serde_json::{json, Value};

fn load(dump: &Path, name: &str, dim: usize) -> Vec<Array2<f32>> {
    let raw = std::fs::read(dump.join(format!("{name}.f32"))).expect("embeddings");
    let data: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let offs: Vec<usize> = std::fs::read(dump.join(format!("{name}.offsets.u32")))
        .expect("offsets")
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    offs.windows(2)
        .map(|w| {
            Array2::from_shape_vec((w[1] - w[0], dim), data[w[0] * dim..w[1] * dim].to_vec())
                .expect("shape")
        })
        .collect()
}

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().expect("metadata");
                    if m.is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (phase, dump, index) = (args[1].as_str(), PathBuf::from(&args[2]), args[3].clone());
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dump.join("meta.json")).expect("meta"))
            .expect("json");
    let dim = meta["dim"].as_u64().expect("dim") as usize;
    let threads = rayon_threads();
    if phase == "build" {
        let nbits: usize = arg(&args, "--nbits", "4").parse().expect("nbits");
        let docs = load(&dump, "docs", dim);
        let tokens: usize = docs.iter().map(|d| d.nrows()).sum();
        let _ = std::fs::remove_dir_all(&index);
        std::fs::create_dir_all(&index).expect("index dir");
        let before = peak_rss_mb();
        let t = Instant::now();
        let config = IndexConfig {
            nbits,
            seed: Some(42),
            ..Default::default()
        };
        MmapIndex::create_with_kmeans(&docs, &index, &config).expect("create");
        let seconds = t.elapsed().as_secs_f64();
        let size = dir_bytes(Path::new(&index));
        println!(
            "{}",
            json!({"engine": "next-plaid", "phase": "build", "threads": threads, "nbits": nbits,
                   "documents": docs.len(), "tokens": tokens, "seconds": seconds,
                   "peak_rss_mb": peak_rss_mb(), "rss_before_build_mb": before,
                   "index_bytes": size, "bytes_per_token": size as f64 / tokens as f64})
        );
    } else {
        let k: usize = arg(&args, "--k", "10").parse().expect("k");
        let queries = load(&dump, "queries", dim);
        let exact: Value = serde_json::from_str(
            &std::fs::read_to_string(dump.join("exact_top100.json")).expect("exact"),
        )
        .expect("json");
        let ids: Vec<String> = meta["documents"]
            .as_array()
            .expect("documents")
            .iter()
            .map(|v| v.as_str().expect("id").to_string())
            .collect();
        let t = Instant::now();
        let idx = MmapIndex::load(&index).expect("load");
        let first_params = SearchParameters {
            top_k: k,
            ..Default::default()
        };
        idx.search(&queries[0], &first_params, None)
            .expect("search");
        let open_first_ms = t.elapsed().as_secs_f64() * 1000.0;
        for setting in arg(&args, "--settings", "8:4096").split(',') {
            let (p, f) = setting.split_once(':').expect("probe:full");
            let params = SearchParameters {
                top_k: k,
                n_ivf_probe: p.parse().expect("probe"),
                n_full_scores: f.parse().expect("full"),
                ..Default::default()
            };
            idx.search_batch(&queries[..8.min(queries.len())], &params, true, None)
                .expect("warm-up");
            let t = Instant::now();
            let res = idx
                .search_batch(&queries, &params, true, None)
                .expect("batch");
            let batch_s = t.elapsed().as_secs_f64();
            let mut lat: Vec<f64> = queries
                .iter()
                .map(|q| {
                    let t = Instant::now();
                    idx.search(q, &params, None).expect("search");
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            lat.sort_by(|a, b| a.total_cmp(b));
            let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
            let ranked: Vec<Vec<String>> = res
                .iter()
                .map(|r| {
                    r.passage_ids
                        .iter()
                        .map(|&i| ids[i as usize].clone())
                        .collect()
                })
                .collect();
            let top = exact["top"].as_array().expect("top");
            let recall: f64 = ranked
                .iter()
                .zip(top)
                .map(|(r, e)| {
                    let truth: Vec<&str> = e
                        .as_array()
                        .expect("row")
                        .iter()
                        .take(k)
                        .map(|x| x[0].as_str().expect("id"))
                        .collect();
                    r.iter()
                        .take(k)
                        .filter(|d| truth.contains(&d.as_str()))
                        .count() as f64
                        / k as f64
                })
                .sum::<f64>()
                / ranked.len() as f64;
            println!(
                "{}",
                json!({"engine": "next-plaid", "phase": "search", "threads": threads,
                       "n_ivf_probe": params.n_ivf_probe, "n_full_scores": params.n_full_scores,
                       "qps": queries.len() as f64 / batch_s, "p50_ms": pct(0.5), "p95_ms": pct(0.95),
                       "recall_at_10": recall, "open_first_query_ms": open_first_ms,
                       "peak_rss_mb": peak_rss_mb(), "ranked": ranked})
            );
        }
    }
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
