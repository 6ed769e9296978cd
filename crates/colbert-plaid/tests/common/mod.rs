#![allow(clippy::unwrap_used)]
//! Shared helpers for the integration tests: deterministic synthetic ColBERT-like data, exact
//! MaxSim ground truth and temp directories.
#![allow(dead_code)]

use std::path::PathBuf;

#[allow(unused_imports)] // each test crate uses some of them
pub use colbert_core::{CancelToken, CodedError, Progress, Stage};
use colbert_plaid::{Embeddings, EmbeddingsView};

pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 11) as f32 / (1u64 << 53) as f32
    }
    pub fn gauss(&mut self) -> f32 {
        let u1 = self.unit().max(1e-7);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}

pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

fn noisy(rng: &mut Rng, base: &[f32], sigma: f32) -> Vec<f32> {
    let mut v: Vec<f32> = base.iter().map(|b| b + sigma * rng.gauss()).collect();
    normalize(&mut v);
    v
}

/// Clustered unit-norm data resembling ColBERT embeddings. Real token embeddings cluster by
/// word (the same word in different contexts stays close) and queries match documents through
/// shared words. So: a vocabulary of word vectors grouped in topics; a document draws words
/// (Zipf-like) from two topics; a token is `normalize(word + context noise)`; a query picks a
/// document, re-embeds some of its words with fresh noise and adds a few topic-level tokens.
pub struct Corpus {
    pub dim: usize,
    pub docs: Embeddings,
    pub ids: Vec<String>,
    words: Vec<Vec<f32>>,
    doc_words: Vec<Vec<usize>>,
    doc_topics: Vec<[usize; 2]>,
}

const TOPICS: usize = 50;
const WORDS_PER_TOPIC: usize = 80;

impl Corpus {
    pub fn new(seed: u64, n_docs: usize, dim: usize, min_tokens: usize, max_tokens: usize) -> Self {
        Self::with_prefix(seed, n_docs, dim, min_tokens, max_tokens, "doc")
    }

    pub fn with_prefix(
        seed: u64,
        n_docs: usize,
        dim: usize,
        min_tokens: usize,
        max_tokens: usize,
        prefix: &str,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let sd = 1.0 / (dim as f32).sqrt();
        let mut words = Vec::with_capacity(TOPICS * WORDS_PER_TOPIC);
        for _ in 0..TOPICS {
            let mut center: Vec<f32> = (0..dim).map(|_| rng.gauss()).collect();
            normalize(&mut center);
            for _ in 0..WORDS_PER_TOPIC {
                words.push(noisy(&mut rng, &center, 1.0 * sd));
            }
        }
        let mut items = Vec::with_capacity(n_docs);
        let mut doc_words = Vec::with_capacity(n_docs);
        let mut doc_topics = Vec::with_capacity(n_docs);
        for _ in 0..n_docs {
            let topics = [rng.below(TOPICS), rng.below(TOPICS)];
            let n = min_tokens + rng.below(max_tokens - min_tokens + 1);
            let mut item = Vec::with_capacity(n * dim);
            let mut ws = Vec::with_capacity(n);
            for _ in 0..n {
                let t = topics[rng.below(2)];
                // Zipf-like: small ranks are frequent.
                let r = ((rng.unit().powi(3)) * WORDS_PER_TOPIC as f32) as usize;
                let w = t * WORDS_PER_TOPIC + r.min(WORDS_PER_TOPIC - 1);
                ws.push(w);
                item.extend(noisy(&mut rng, &words[w], 0.5 * sd));
            }
            items.push(item);
            doc_words.push(ws);
            doc_topics.push(topics);
        }
        let ids = (0..n_docs).map(|i| format!("{prefix}-{i}")).collect();
        Corpus {
            dim,
            docs: Embeddings::from_items(dim, items),
            ids,
            words,
            doc_words,
            doc_topics,
        }
    }

    /// Queries aimed at random documents (`tokens` rows each: ~3/4 re-embedded words of the
    /// document, the rest vaguer topic-level tokens, like ColBERT's [MASK] expansion).
    pub fn queries(&self, seed: u64, n: usize, tokens: usize) -> Embeddings {
        let mut rng = Rng::new(seed);
        let dim = self.dim;
        let sd = 1.0 / (dim as f32).sqrt();
        let items = (0..n)
            .map(|_| {
                let d = rng.below(self.doc_words.len());
                let mut q = Vec::with_capacity(tokens * dim);
                for i in 0..tokens {
                    if i < tokens * 3 / 4 {
                        let w = self.doc_words[d][rng.below(self.doc_words[d].len())];
                        q.extend(noisy(&mut rng, &self.words[w], 0.5 * sd));
                    } else {
                        let t = self.doc_topics[d][rng.below(2)];
                        let w = t * WORDS_PER_TOPIC + rng.below(WORDS_PER_TOPIC);
                        q.extend(noisy(&mut rng, &self.words[w], 1.0 * sd));
                    }
                }
                q
            })
            .collect();
        Embeddings::from_items(dim, items)
    }

    pub fn slice(&self, range: std::ops::Range<usize>) -> (Vec<String>, Embeddings) {
        let items = range.clone().map(|i| self.docs.item(i).to_vec()).collect();
        (
            self.ids[range].to_vec(),
            Embeddings::from_items(self.dim, items),
        )
    }
}

/// Exact top-k (ids, scores) of each query over `docs` (best first, ties by position).
pub fn exact_topk(
    queries: EmbeddingsView<'_>,
    docs: EmbeddingsView<'_>,
    ids: &[String],
    k: usize,
) -> Vec<Vec<(String, f32)>> {
    let s = colbert_core::maxsim(queries, docs).unwrap();
    let nd = docs.len();
    (0..queries.len())
        .map(|q| {
            let mut v: Vec<(f32, usize)> = (0..nd).map(|d| (s[q * nd + d], d)).collect();
            v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            v.truncate(k);
            v.into_iter().map(|(sc, d)| (ids[d].clone(), sc)).collect()
        })
        .collect()
}

pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "plaid-test-{name}-{}-{}",
            std::process::id(),
            Rng::new(now()).next()
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A token nobody cancels.
pub fn no_cancel() -> CancelToken {
    CancelToken::new()
}

pub fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Creates an index in `dir` with `options` and commits `ids`/`docs` in one transaction.
pub fn build_index(
    dir: &std::path::Path,
    options: colbert_plaid::IndexOptions,
    ids: Vec<String>,
    docs: colbert_plaid::EmbeddingsView<'_>,
) -> colbert_plaid::PlaidIndex {
    let idx = colbert_plaid::PlaidIndex::create(dir, options, false).unwrap();
    let mut w = idx.writer().unwrap();
    w.push(ids, docs).unwrap();
    w.commit(&no_cancel(), &|_| {}).unwrap();
    idx
}
