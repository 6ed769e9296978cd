//! Fuzzing harnesses (not part of the API; hidden from the docs).
//!
//! One function per `cargo fuzz` target of `fuzz/` (`manifest`, `segment`, `filter`,
//! `stored_fields`). The fuzz targets and the stable regression test
//! (`tests/fuzz_corpus.rs`, which replays every committed corpus file and crash reproducer)
//! call the same functions, so they cannot drift apart. A harness returns normally for any
//! input the engine handles (a value or a coded error); it panics only when the engine panics
//! or breaks one of the invariants checked here.
//!
//! The binary inputs are small structured encodings (documented per harness) so that the
//! fuzzer can get past checksums: the `segment` harness can re-seal a mutated file (recompute
//! its block checksums and the table CRC the manifest would pin), which is how a file that is
//! structurally wrong but correctly checksummed — the case only a bug or a deliberate forgery
//! produces — reaches the structural checks and the lazily verified sections.

// Panicking on a broken invariant is what a harness is for.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use colbert_core::{CancelToken, CodedError, Embeddings};
use serde_json::{Map, Value};

use crate::codec::Codebook;
use crate::error::PlaidError;
use crate::filter::Filter;
use crate::format::{memory, Container, FileRef, Kind};
use crate::manifest::{Manifest, SegmentMeta, StoredOptions};
use crate::search::{self, SearchParams};
use crate::segment::DocumentFields;
use crate::segment::Segment;
use crate::snapshot::{Snapshot, Tombstones};

/// Every error the engine returns must carry one of the documented codes.
fn coded(e: &PlaidError) {
    let code = e.code();
    assert!(
        matches!(
            code,
            "INDEX_NOT_FOUND"
                | "INDEX_EXISTS"
                | "INDEX_FORMAT_UNSUPPORTED"
                | "INDEX_CORRUPT"
                | "INDEX_LOCKED"
                | "INVALID_ARGUMENT"
                | "ABORTED"
                | "CLOSED"
                | "IO"
        ),
        "unexpected error code {code}: {e}"
    );
}

/// Runs `f` on a one-thread pool (searches use rayon): one core, deterministic order.
fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    match POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().num_threads(1).build().ok()) {
        Some(p) => p.install(f),
        None => f(),
    }
}

fn options(nbits: u8) -> StoredOptions {
    StoredOptions {
        nbits,
        kmeans_iterations: 4,
        num_centroids: None,
        seed: 42,
        max_points_per_centroid: 256,
    }
}

// ---------------------------------------------------------------------------------------------
// manifest

/// `MANIFEST` decoding. Input: a mode byte, then either the raw file (mode even) or a JSON body
/// (mode odd) that the harness wraps in a header with the right version and CRC, so the JSON
/// itself is fuzzed past the checksum. A decoded manifest must round-trip through its encoding
/// (what the next commit writes must open again), and a snapshot of it must open or fail with
/// a code (its files do not exist here).
pub fn manifest(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let bytes = if mode % 2 == 0 {
        body.to_vec()
    } else {
        let json = String::from_utf8_lossy(body);
        let v = crate::format::FORMAT_VERSION;
        let crc = crc32fast::hash(format!("{v}\n{json}").as_bytes());
        format!("PLAID-MANIFEST {v} {crc:08x}\n{json}").into_bytes()
    };
    let m = match Manifest::decode(&bytes) {
        Ok(m) => m,
        Err(e) => return coded(&e),
    };
    let again = m.encode().expect("a decoded manifest encodes");
    let back = Manifest::decode(&again).expect("a re-encoded manifest decodes");
    // Written back in the current format, otherwise unchanged.
    let mut upgraded = m.clone();
    upgraded.format_version = crate::format::FORMAT_VERSION;
    assert_eq!(back, upgraded, "manifest round trip");
    let _ = m.files();
    let nowhere = std::env::temp_dir().join("colbert-plaid-fuzz-no-such-index");
    match Snapshot::open(&nowhere, m) {
        Ok(s) => {
            let _ = s.lookup("x");
            for d in [0, 1, s.manifest.next_doc.saturating_sub(1), u32::MAX] {
                let _ = s.is_live(d);
                let _ = s.locate(d);
                let _ = s.external_id(d);
                let _ = s.doc_tokens(d);
                let _ = s.fields(d);
            }
        }
        Err(e) => coded(&e),
    }
}

// ---------------------------------------------------------------------------------------------
// segment (and the other containers)

/// Length of the parameter block after the flags byte of a `segment` input.
const SEG_PARAMS: usize = 19;

/// Parameters of a `segment` input: what the manifest says about the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentParams {
    pub n_docs: u32,
    pub n_tokens: u64,
    pub code_bytes: u8,
    pub num_centroids: u32,
    pub dim: u16,
}

/// Flags of a `segment` input (first byte).
pub mod seg_flags {
    /// Recompute the block checksums and the table CRC (otherwise the table CRC the header
    /// points at is trusted, and the block checksums stay as they are).
    pub const RESEAL: u8 = 1;
    /// Take n_docs, n_tokens, code_bytes, num_centroids and dim from the file's own sections
    /// instead of the parameter block (a manifest that agrees with the file).
    pub const DERIVE: u8 = 2;
    /// Open as a codebook (`2 << 2`) or a tombstone bitmap (`3 << 2`) instead of a segment.
    pub const CODEBOOK: u8 = 2 << 2;
    pub const TOMBSTONES: u8 = 3 << 2;
    /// nbits: `0 << 4` → 2, `1 << 4` → 1, `2 << 4` → 4, `3 << 4` → 2.
    pub const NBITS_1: u8 = 1 << 4;
    pub const NBITS_4: u8 = 2 << 4;
}

/// Encodes a `segment` input (used to write the seed corpus).
pub fn segment_input(flags: u8, p: SegmentParams, file: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(&p.n_docs.to_le_bytes());
    v.extend_from_slice(&p.n_tokens.to_le_bytes());
    v.push(p.code_bytes);
    v.extend_from_slice(&p.num_centroids.to_le_bytes());
    v.extend_from_slice(&p.dim.to_le_bytes());
    v.extend_from_slice(file);
    v
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    u64::from_le_bytes(a)
}

/// Opening a container file from fuzzed bytes the way the index does (header, checksum table,
/// section table, kind-specific structure), then touching every lazily verified section as
/// searches, `documents`, `reconstruct` and filters do.
///
/// Input: flags byte ([`seg_flags`]), the parameters (n_docs u32, n_tokens u64, code_bytes u8,
/// num_centroids u32, dim u16; little-endian), then the file.
pub fn segment(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some(params) = rest.get(..SEG_PARAMS) else {
        return;
    };
    let file = &rest[SEG_PARAMS..];
    let mut p = SegmentParams {
        n_docs: le_u64(&params[0..4]) as u32,
        n_tokens: le_u64(&params[4..12]),
        code_bytes: params[12],
        num_centroids: le_u64(&params[13..17]) as u32,
        dim: le_u64(&params[17..19]) as u16,
    };
    let nbits = [2u8, 1, 4, 2][((flags >> 4) & 3) as usize];
    let (file, table_crc) = if flags & seg_flags::RESEAL != 0 {
        memory::reseal(file.to_vec())
    } else {
        (file.to_vec(), memory::claimed_table_crc(file))
    };
    match (flags >> 2) & 3 {
        2 => return codebook_file(&file, table_crc, p, nbits),
        3 => return tombstones_file(&file, table_crc),
        _ => {}
    }
    if flags & seg_flags::DERIVE != 0 {
        derive(&file, nbits, &mut p);
    }
    // What a manifest that passed validation allows (`Manifest::validate`, `check_nbits`),
    // with the codebook kept small.
    let dim = p.dim as usize;
    let k = (p.num_centroids as usize).max(1);
    if !matches!(p.code_bytes, 2 | 4)
        || dim == 0
        || dim > 1024
        || crate::codec::check_nbits(nbits, dim).is_err()
        || k * dim > 1 << 16
    {
        return;
    }
    let Some(cb) = synthetic_codebook(dim, k, nbits) else {
        return;
    };
    let meta = SegmentMeta {
        file: FileRef {
            name: "seg-fuzz.plaid".into(),
            len: file.len() as u64,
            table_crc,
        },
        doc_start: 0,
        n_docs: p.n_docs,
        n_tokens: p.n_tokens,
        code_bytes: p.code_bytes,
        num_centroids: p.num_centroids,
        // What the file's header says (a manifest agrees with the file it lists).
        format: file.get(8..12).map_or(0, |b| le_u64(b) as u32),
    };
    let seg = match Container::from_bytes(&meta.file.name, &file, table_crc, Kind::Segment)
        .and_then(|c| Segment::from_container(c, &meta, cb.codec.row_bytes()))
    {
        Ok(s) => s,
        Err(e) => return coded(&e),
    };
    exercise_segment(seg, cb, nbits);
}

/// Fills the parameters from the file's own sections (as a consistent manifest would).
fn derive(file: &[u8], nbits: u8, p: &mut SegmentParams) {
    let sec = |i| memory::section(file, i);
    if let Some(s0) = sec(0).filter(|s| s.len() >= 8) {
        p.n_docs = (s0.len() / 8 - 1) as u32;
        p.n_tokens = le_u64(&s0[s0.len() - 8..]);
    }
    if let Some(s7) = sec(7).filter(|s| s.len() >= 8) {
        p.num_centroids = (s7.len() / 8 - 1) as u32;
    }
    if let Some(s5) = sec(5) {
        if let Some(cb) = (s5.len() as u64).checked_div(p.n_tokens) {
            p.code_bytes = cb as u8;
        }
    }
    if let Some(row) = sec(6).and_then(|s6| (s6.len() as u64).checked_div(p.n_tokens)) {
        p.dim = (row * 8 / nbits as u64).min(u16::MAX as u64) as u16;
    }
}

/// A small, valid codebook (`k` centroids of width `dim`) held in memory.
fn synthetic_codebook(dim: usize, k: usize, nbits: u8) -> Option<Codebook> {
    let b = 1usize << nbits;
    let cutoffs: Vec<f32> = (1..b).map(|i| (i as f32 - b as f32 / 2.0) * 0.05).collect();
    let weights: Vec<f32> = (0..b).map(|i| (i as f32 - b as f32 / 2.0) * 0.05).collect();
    let cents: Vec<f32> = (0..k * dim)
        .map(|i| ((i * 31 % 17) as f32 / 17.0) - 0.5)
        .collect();
    let (bytes, crc) = memory::build(
        Kind::Codebook,
        &[
            bytemuck::cast_slice(&cents),
            bytemuck::cast_slice(&cutoffs),
            bytemuck::cast_slice(&weights),
        ],
    );
    let mut m = Manifest::empty(options(nbits));
    m.dim = Some(dim);
    m.num_centroids = k;
    let c = Container::from_bytes("cbk-fuzz.plaid", &bytes, crc, Kind::Codebook).ok()?;
    Codebook::from_container(c, &m).ok()
}

/// Everything a snapshot does with a segment: id lookups, stored fields, filters, decompression
/// and the search stages (probing every centroid, with and without pruning, over a subset).
fn exercise_segment(seg: Segment, cb: Codebook, nbits: u8) {
    let dim = cb.dim;
    let k = cb.k;
    let n = seg.meta.n_docs;
    let _ = seg.byte_breakdown();
    let _ = seg.field_bytes();
    for c in 0..=k.min(4096) {
        if let Err(e) = seg.ivf_list(c) {
            coded(&e);
        }
    }
    let mut m = Manifest::empty(options(nbits));
    m.dim = Some(dim);
    m.num_centroids = k;
    m.next_doc = n;
    m.live_docs = n as u64;
    m.live_tokens = seg.meta.n_tokens;
    m.segments = vec![seg.meta.clone()];
    let snap = Snapshot {
        manifest: m,
        codebook: Some(Arc::new(cb)),
        segments: vec![Arc::new(seg)],
        tombstones: Tombstones::default(),
    };
    let mut buf = Vec::new();
    let mut ids = Vec::new();
    for d in 0..n.min(256) {
        let id = snap.external_id(d).to_string();
        let found = snap.lookup(&id);
        if let Some(f) = found {
            assert_eq!(snap.external_id(f), id, "lookup returned another id");
        }
        ids.push(id);
        let _ = snap.doc_tokens(d);
        match snap.fields(d) {
            Ok((_, meta)) => {
                let _ = DocumentFields::from_stored("", meta);
            }
            Err(e) => coded(&e),
        }
        match snap.decompress_doc(d, &mut buf) {
            Ok(()) => assert_eq!(buf.len() % dim, 0),
            Err(e) => coded(&e),
        }
    }
    let q: Vec<f32> = (0..2 * dim).map(|i| ((i % 5) as f32 - 2.0) * 0.3).collect();
    let queries = Embeddings::from_items(dim, vec![q]);
    let all = Filter::parse("{}").ok();
    one_thread(|| {
        let full = SearchParams {
            n_probe: Some(k),
            centroid_score_threshold: Some(f32::NEG_INFINITY),
            candidates: Some(64),
            ..SearchParams::new(3)
        };
        let pruned = SearchParams {
            n_probe: Some(2),
            centroid_score_threshold: Some(0.0),
            candidates: Some(4),
            ..SearchParams::new(1)
        };
        for p in [&full, &pruned] {
            let subsets = [
                None,
                search::scope(&snap, Some(&ids), all.as_ref()).unwrap_or_else(|e| {
                    coded(&e);
                    None
                }),
            ];
            for s in subsets {
                match search::search(&snap, queries.view(), p, s, &CancelToken::new()) {
                    Ok(hits) => {
                        for h in hits.iter().flatten() {
                            assert!(!h.score.is_nan(), "NaN score");
                        }
                    }
                    Err(e) => coded(&e),
                }
            }
        }
    });
}

/// A codebook with the manifest's dim (`p.dim`) and centroid count (`p.n_tokens` when not
/// zero, the manifest's full usize range; else `p.num_centroids`).
fn codebook_file(file: &[u8], table_crc: u32, p: SegmentParams, nbits: u8) {
    let mut m = Manifest::empty(options(nbits));
    m.dim = Some(p.dim as usize);
    m.num_centroids = if p.n_tokens != 0 {
        p.n_tokens as usize
    } else {
        p.num_centroids as usize
    };
    let cb = match Container::from_bytes("cbk-fuzz.plaid", file, table_crc, Kind::Codebook)
        .and_then(|c| Codebook::from_container(c, &m))
    {
        Ok(cb) => cb,
        Err(e) => return coded(&e),
    };
    assert_eq!(cb.centroids().len(), cb.k * cb.dim);
    let packed = vec![0x5au8; cb.codec.row_bytes()];
    let mut out = vec![0.0f32; cb.dim];
    for c in 0..=cb.k.min(4096) {
        let cent = cb.centroid(c);
        if c < cb.k {
            assert_eq!(cent.len(), cb.dim);
            cb.codec.decompress_into(cent, &packed, &mut out);
        } else {
            assert!(cent.is_empty());
        }
    }
}

fn tombstones_file(file: &[u8], table_crc: u32) {
    match Container::from_bytes("tomb-fuzz.plaid", file, table_crc, Kind::Tombstones)
        .and_then(Tombstones::from_container)
    {
        Ok(t) => {
            let n = t.count();
            let bits = (0..(t.words.len() * 64).min(1 << 16) as u32)
                .filter(|&d| t.is_deleted(d))
                .count() as u64;
            if t.words.len() * 64 <= 1 << 16 {
                assert_eq!(bits, n, "popcount");
            }
        }
        Err(e) => coded(&e),
    }
}

// ---------------------------------------------------------------------------------------------
// filter

/// Metadata filters. Input: the filter's JSON, then metadata texts, separated by 0xFF (a byte
/// that never occurs in UTF-8). Parsing must succeed or be `INVALID_ARGUMENT`; a parsed filter
/// is evaluated on every metadata text, and the combinators must agree with it:
/// `{"$not": f}` is its negation, `{"$and": [f]}` and `{"$or": [f, f]}` equal it.
pub fn filter(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0xFF);
    let text = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
    let f = match Filter::parse(&text) {
        Ok(f) => f,
        Err(e) => {
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{e}");
            return;
        }
    };
    // The same filter through the wrappers (may exceed the JSON nesting limit: then skip).
    let not = Filter::parse(&format!("{{\"$not\":{text}}}")).ok();
    let and = Filter::parse(&format!("{{\"$and\":[{text}]}}")).ok();
    let or = Filter::parse(&format!("{{\"$or\":[{text},{text}]}}")).ok();
    let mut docs: Vec<String> = parts
        .take(16)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    docs.push(String::new());
    for doc in &docs {
        let parsed = if doc.is_empty() {
            Some(None)
        } else {
            serde_json::from_str::<Map<String, Value>>(doc)
                .ok()
                .map(Some)
        };
        let Some(parsed) = parsed else {
            let e = f
                .matches_stored(doc)
                .expect_err("unparsable metadata matched or was skipped");
            assert_eq!(e.code(), "INDEX_CORRUPT", "{e}");
            continue;
        };
        let hit = f
            .matches_stored(doc)
            .expect("metadata that parses as an object");
        assert_eq!(f.matches(parsed.as_ref()), hit);
        if let Some(n) = &not {
            assert_eq!(n.matches(parsed.as_ref()), !hit, "$not");
        }
        if let Some(a) = &and {
            assert_eq!(a.matches(parsed.as_ref()), hit, "$and");
        }
        if let Some(o) = &or {
            assert_eq!(o.matches(parsed.as_ref()), hit, "$or");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// stored_fields

/// Stored text and metadata of a segment. The harness builds a valid segment of `n` one-token
/// documents (`n` = first byte % 8) whose four stored-field sections come from the input;
/// the engine must return each document's fields as UTF-8 text and JSON-object metadata, or
/// `INDEX_CORRUPT`, and filters over them must not fail otherwise.
///
/// Input after the first byte, split at 0xFF: with bit 3 of the first byte clear, the four
/// raw sections (text offsets u64, texts, metadata offsets u64, metadata); with it set, the
/// documents' texts and metadata alternately (offsets computed, so they are consistent).
pub fn stored_fields(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let n = (head % 8) as usize;
    let parts: Vec<&[u8]> = rest.split(|&b| b == 0xFF).collect();
    let mut sections: [Vec<u8>; 4] = Default::default();
    if head & 8 != 0 {
        let mut offs = [vec![0u64], vec![0u64]];
        for d in 0..n {
            for (w, off) in offs.iter_mut().enumerate() {
                let bytes = parts.get(2 * d + w).copied().unwrap_or(&[]);
                sections[2 * w + 1].extend_from_slice(bytes);
                off.push(sections[2 * w + 1].len() as u64);
            }
        }
        sections[0] = bytemuck::cast_slice(&offs[0]).to_vec();
        sections[2] = bytemuck::cast_slice(&offs[1]).to_vec();
    } else {
        for (s, p) in sections.iter_mut().zip(&parts) {
            *s = p.to_vec();
        }
    }
    let doc_offsets: Vec<u64> = (0..=n as u64).collect();
    let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let id_offsets: Vec<u64> = std::iter::once(0)
        .chain((1..=n).map(|i| ids[..i].iter().map(|s| s.len() as u64).sum()))
        .collect();
    let blob: Vec<u8> = ids.concat().into_bytes();
    let mut pairs: Vec<(u64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (crate::ids::id_hash(id), i as u32))
        .collect();
    pairs.sort_unstable();
    let hashes: Vec<u64> = pairs.iter().map(|p| p.0).collect();
    let order: Vec<u32> = pairs.iter().map(|p| p.1).collect();
    let (dim, nbits, k) = (8usize, 2u8, 1usize);
    let codes = vec![0u16; n];
    let residuals = vec![0u8; n * dim * nbits as usize / 8];
    let ivf_offsets = vec![0u64, n as u64];
    let postings: Vec<u32> = (0..n as u32).collect();
    let (file, crc) = memory::build(
        Kind::Segment,
        &[
            bytemuck::cast_slice(&doc_offsets),
            bytemuck::cast_slice(&id_offsets),
            &blob,
            bytemuck::cast_slice(&hashes),
            bytemuck::cast_slice(&order),
            bytemuck::cast_slice(&codes),
            &residuals,
            bytemuck::cast_slice(&ivf_offsets),
            bytemuck::cast_slice(&postings),
            &sections[0],
            &sections[1],
            &sections[2],
            &sections[3],
            bytemuck::cast_slice(&vec![1.0f32; n]),
        ],
    );
    let meta = SegmentMeta {
        file: FileRef {
            name: "seg-fields.plaid".into(),
            len: file.len() as u64,
            table_crc: crc,
        },
        doc_start: 0,
        n_docs: n as u32,
        n_tokens: n as u64,
        code_bytes: 2,
        num_centroids: k as u32,
        format: crate::format::FORMAT_VERSION,
    };
    let Some(cb) = synthetic_codebook(dim, k, nbits) else {
        panic!("the synthetic codebook must open");
    };
    let seg = match Container::from_bytes(&meta.file.name, &file, crc, Kind::Segment)
        .and_then(|c| Segment::from_container(c, &meta, cb.codec.row_bytes()))
    {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(e.code(), "INDEX_CORRUPT", "{e}");
            return;
        }
    };
    let mut m = Manifest::empty(options(nbits));
    m.dim = Some(dim);
    m.num_centroids = k;
    m.next_doc = n as u32;
    m.live_docs = n as u64;
    m.live_tokens = n as u64;
    m.segments = vec![meta];
    let snap = Snapshot {
        manifest: m,
        codebook: Some(Arc::new(cb)),
        segments: vec![Arc::new(seg)],
        tombstones: Tombstones::default(),
    };
    for d in 0..n as u32 {
        match snap.document(d) {
            Ok(f) => {
                if let Some(meta) = &f.metadata {
                    assert!(
                        serde_json::from_str::<Map<String, Value>>(meta).is_ok(),
                        "stored metadata returned as a document is not a JSON object"
                    );
                }
            }
            Err(e) => assert_eq!(e.code(), "INDEX_CORRUPT", "{e}"),
        }
    }
    for f in [r#"{}"#, r#"{"a":{"$exists":true}}"#, r#"{"$not":{"a":1}}"#] {
        let Ok(f) = Filter::parse(f) else { continue };
        if let Err(e) = one_thread(|| search::scope(&snap, None, Some(&f))) {
            assert_eq!(e.code(), "INDEX_CORRUPT", "{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// seeds

/// Seed inputs for the `manifest` and `segment` harnesses from a real index directory: its
/// `MANIFEST` (raw and as a JSON body) and every container it names, as segment, codebook or
/// tombstones input with the manifest's parameters. Returns `(target, file name, input)`.
pub fn seeds_from_index(dir: &Path) -> crate::Result<Vec<(&'static str, String, Vec<u8>)>> {
    let raw = std::fs::read(dir.join(crate::manifest::MANIFEST))
        .map_err(|e| PlaidError::io("reading", dir, e))?;
    let m = Manifest::decode(&raw)?;
    let gen = m.generation;
    let mut out = Vec::new();
    let with_mode = |mode: u8, b: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(b);
        v
    };
    out.push(("manifest", format!("gen{gen}-raw"), with_mode(0, &raw)));
    if let Some(i) = raw.iter().position(|&b| b == b'\n') {
        out.push((
            "manifest",
            format!("gen{gen}-json"),
            with_mode(1, &raw[i + 1..]),
        ));
    }
    let nbits_flag = match m.options.nbits {
        1 => seg_flags::NBITS_1,
        4 => seg_flags::NBITS_4,
        _ => 0,
    };
    let read = |f: &FileRef| {
        std::fs::read(dir.join(&f.name)).map_err(|e| PlaidError::io("reading", dir, e))
    };
    let base = SegmentParams {
        n_docs: 0,
        n_tokens: 0,
        code_bytes: 2,
        num_centroids: m.num_centroids as u32,
        dim: m.dim.unwrap_or(0) as u16,
    };
    for (i, s) in m.segments.iter().enumerate() {
        let p = SegmentParams {
            n_docs: s.n_docs,
            n_tokens: s.n_tokens,
            code_bytes: s.code_bytes,
            num_centroids: s.num_centroids,
            ..base
        };
        let bytes = read(&s.file)?;
        for (flags, tag) in [
            (0, "raw"),
            (seg_flags::RESEAL | seg_flags::DERIVE, "derived"),
        ] {
            out.push((
                "segment",
                format!("gen{gen}-seg{i}-{tag}"),
                segment_input(flags | nbits_flag, p, &bytes),
            ));
        }
    }
    if let Some(f) = &m.codebook {
        let flags = seg_flags::CODEBOOK | nbits_flag;
        out.push((
            "segment",
            format!("gen{gen}-codebook"),
            segment_input(flags, base, &read(f)?),
        ));
    }
    if let Some(f) = &m.tombstones {
        out.push((
            "segment",
            format!("gen{gen}-tombstones"),
            segment_input(seg_flags::TOMBSTONES, base, &read(f)?),
        ));
    }
    Ok(out)
}
