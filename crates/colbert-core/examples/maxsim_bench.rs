//! Exhaustive MaxSim throughput: the blocked SGEMM path (`maxsim`) against the pair-by-pair
//! dot loop it replaced, side by side in one run, plus the SGEMM peak of `dots_into` as the
//! physical reference. Synthetic unit vectors shaped like SciFact under the stand-in model
//! (dim 128, 32-token queries, 5,183 documents of 40–400 tokens, mean ≈ 220) by default; the
//! last two arguments set the document length range (e.g. `20 100` for short passages).
//!
//!   cargo run --release -p colbert-embeddings --example maxsim_bench -- [queries] [threads] [min] [max]
#![allow(clippy::unwrap_used)]
use std::time::Instant;

use colbert_core::{kernels, maxsim, maxsim_pair, normalize_rows, Embeddings};
use rayon::prelude::*;

fn batch(seed: u64, dim: usize, n: usize, rows: impl Fn(u64) -> usize) -> Embeddings {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let items = (0..n)
        .map(|_| {
            let r = rows(next());
            let mut v: Vec<f32> = (0..r * dim)
                .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
                .collect();
            normalize_rows(dim, &mut v);
            v
        })
        .collect();
    Embeddings::from_items(dim, items)
}

/// The implementation before the blocked path: every pair scored with the vectorised dot,
/// parallel over queries.
fn pairwise(q: &Embeddings, d: &Embeddings) -> Vec<f32> {
    let nd = d.len();
    let mut out = vec![0.0f32; q.len() * nd];
    out.par_chunks_mut(nd).enumerate().for_each(|(qi, row)| {
        for (di, cell) in row.iter_mut().enumerate() {
            *cell = maxsim_pair(q.dim, q.item(qi), d.item(di));
        }
    });
    out
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let nq = args.first().copied().unwrap_or(30);
    let threads = args.get(1).copied().unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let dim = 128;
    let q = batch(1, dim, nq, |_| 32);
    let (lo, hi) = (
        args.get(2).copied().unwrap_or(40),
        args.get(3).copied().unwrap_or(400),
    );
    let d = batch(2, dim, 5183, |r| lo + (r % (hi - lo + 1) as u64) as usize);
    let flops = 2.0 * (q.rows() * d.rows() * dim) as f64;
    println!(
        "{} queries × {} documents ({} query tokens × {} document tokens, dim {dim}), {threads} threads: {:.1} GFLOP per pass",
        q.len(),
        d.len(),
        q.rows(),
        d.rows(),
        flops / 1e9
    );

    // SGEMM peak: 512 × 4096 · (4096 × 128)ᵀ blocks on every thread.
    let (m, n) = (512, 4096);
    let a: Vec<f32> = (0..m * dim).map(|i| (i as f32 * 0.37).sin()).collect();
    let b: Vec<f32> = (0..n * dim).map(|i| (i as f32 * 0.11).cos()).collect();
    let reps = 40;
    let t = Instant::now();
    (0..reps * threads).into_par_iter().for_each(|_| {
        let mut c = vec![0.0f32; m * n];
        kernels::dots_into(&a, &b, dim, &mut c);
        std::hint::black_box(&c);
    });
    let peak = 2.0 * (m * n * dim * reps * threads) as f64 / t.elapsed().as_secs_f64() / 1e9;
    println!("SGEMM (dots_into, {m}×{n}×{dim} per call): {peak:.1} GFLOP/s");

    let t = Instant::now();
    let fast = maxsim(q.view(), d.view()).unwrap();
    let s_fast = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let slow = pairwise(&q, &d);
    let s_slow = t.elapsed().as_secs_f64();
    let max_delta = fast
        .iter()
        .zip(&slow)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let gf = |s: f64| flops / s / 1e9;
    println!(
        "blocked SGEMM maxsim: {s_fast:.2} s ({:.1} GFLOP/s, {:.0} % of the SGEMM peak)",
        gf(s_fast),
        100.0 * gf(s_fast) / peak
    );
    println!(
        "pair-by-pair dot loop: {s_slow:.2} s ({:.1} GFLOP/s)",
        gf(s_slow)
    );
    println!(
        "speed-up {:.1}×; max |Δ| between the two {max_delta:.2e}",
        s_slow / s_fast
    );
}
