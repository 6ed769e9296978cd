//! Profiling aid: runs the queries of a `bench/dump-embeddings.mjs` dump against an index
//! folder, without Node, and prints the batch time.
//!
//!   cargo run --release -p colbert-plaid --example search_dump -- <dump> <index> [nProbe:candidates] [rounds]
use colbert_core::CancelToken;
use colbert_plaid::{Embeddings, PlaidIndex, SearchParams};

fn read_u32(path: &std::path::Path) -> Vec<u32> {
    let b = std::fs::read(path).expect("read");
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dump = std::path::Path::new(&args[1]);
    let index = PlaidIndex::open(std::path::Path::new(&args[2])).expect("open");
    let (probe, cands) = args
        .get(3)
        .and_then(|s| s.split_once(':'))
        .map(|(a, b)| (a.parse().expect("nProbe"), b.parse().expect("candidates")))
        .unwrap_or((1usize, 256usize));
    let rounds: usize = args.get(4).map_or(5, |r| r.parse().expect("rounds"));
    let data: Vec<f32> = read_u32(&dump.join("queries.f32"))
        .into_iter()
        .map(f32::from_bits)
        .collect();
    let offsets = read_u32(&dump.join("queries.offsets.u32"));
    let dim = 128;
    let q = Embeddings::new(dim, offsets, data).expect("queries");
    let p = SearchParams {
        n_probe: Some(probe),
        candidates: Some(cands),
        ..SearchParams::new(10)
    };
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        let hits = index
            .search(q.view(), &p, None, &CancelToken::new())
            .expect("search");
        let s = t.elapsed().as_secs_f64();
        println!(
            "{} queries in {:.3} s = {:.1} QPS",
            hits.len(),
            s,
            hits.len() as f64 / s
        );
    }
    // Single-query latency: one query per call, as a service sees it.
    let mut lat: Vec<f64> = (0..q.len())
        .map(|i| {
            let one = Embeddings::from_items(dim, vec![q.item(i).to_vec()]);
            let t = std::time::Instant::now();
            index
                .search(one.view(), &p, None, &CancelToken::new())
                .expect("search");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!("one query per call: p50 {:.2} ms", lat[lat.len() / 2]);
}
