//! Fuzzing harnesses (not part of the API; hidden from the docs).
//!
//! One function per `cargo fuzz` target of `fuzz/` (`model_config`, `tokenize`). The fuzz
//! targets and the stable regression test (`tests/fuzz_corpus.rs`, which replays every
//! committed corpus file and crash reproducer) call the same functions. A harness returns
//! normally for any input the encoder handles (a value or a coded error) and panics only when
//! the encoder panics or breaks an invariant checked here. No ONNX Runtime is involved.
//!
//! Both use the committed tokenizers of `__test__/fixtures/tiny-bert` and
//! `models/minilm-colbert` (read once per process).

// Panicking on a broken invariant is what a harness is for.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tokenizers::Tokenizer;

use crate::config::{load_tokenizer, read_config, ConfigFiles, ConfigOverrides, ModelConfig};
use crate::error::{EncodeError, Result};
use crate::tokenize::{truncating, Kind, TextTokenizer, Tokenized};
use colbert_core::CodedError;

/// The JSON files the configuration is read from, in the order of a `model_config` input.
/// Index 3 stands for the Dense module's `config.json`, wherever `modules.json` puts it.
pub const CONFIG_FILES: [&str; 7] = [
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Dense/config.json",
    "onnx_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// The model folders whose tokenizers the harnesses use: WordPiece (a small and a full BERT
/// vocabulary) and BPE (ModernBERT).
pub fn fixture_dirs() -> [PathBuf; 3] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        root.join("__test__/fixtures/tiny-bert"),
        root.join("models/minilm-colbert"),
        root.join("__test__/fixtures/tiny-modernbert"),
    ]
}

/// Which fixture a control byte picks: bit 0 and bit 6 (tiny-bert, minilm, tiny-modernbert).
fn pick(c: u8) -> usize {
    usize::from((c & 1) | ((c >> 5) & 2)) % 3
}

/// A model folder's JSON files held in memory (`None`: absent).
#[derive(Clone, Default)]
pub struct MemFiles {
    files: [Option<String>; 7],
}

impl MemFiles {
    /// The configuration files of a folder on disk.
    pub fn read(dir: &Path) -> Self {
        let mut m = MemFiles::default();
        for (slot, name) in m.files.iter_mut().zip(CONFIG_FILES) {
            *slot = std::fs::read_to_string(dir.join(name)).ok();
        }
        m
    }

    /// Replaces one of [`CONFIG_FILES`] (`None`: absent).
    pub fn with(mut self, name: &str, text: Option<&str>) -> Self {
        if let Some(i) = CONFIG_FILES.iter().position(|f| *f == name) {
            self.files[i] = text.map(str::to_string);
        }
        self
    }

    fn slot(rel: &Path) -> Option<usize> {
        if let Some(i) = CONFIG_FILES.iter().position(|f| Path::new(f) == rel) {
            return Some(i);
        }
        // Any other `<module>/config.json` is the Dense configuration.
        (rel.file_name()? == "config.json" && rel.parent()? != Path::new("")).then_some(3)
    }
}

impl ConfigFiles for MemFiles {
    fn path(&self, rel: &Path) -> PathBuf {
        Path::new("<memory>").join(rel)
    }

    fn required(&self, rel: &Path) -> Result<String> {
        self.optional(rel)?.ok_or_else(|| {
            EncodeError::ModelNotFound(format!("{} does not exist", self.path(rel).display()))
        })
    }

    fn optional(&self, rel: &Path) -> Result<Option<String>> {
        Ok(Self::slot(rel).and_then(|i| self.files[i].clone()))
    }
}

struct Fixture {
    tokenizer: Tokenizer,
    files: MemFiles,
    /// `get_vocab_size(true)` (it builds the whole vocabulary map: too slow per input).
    vocab: u32,
}

fn fixtures() -> &'static [Fixture] {
    static F: OnceLock<Vec<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        fixture_dirs()
            .iter()
            .map(|d| {
                let tokenizer = load_tokenizer(&d.join("tokenizer.json")).expect("fixture");
                Fixture {
                    vocab: tokenizer.get_vocab_size(true) as u32,
                    tokenizer,
                    files: MemFiles::read(d),
                }
            })
            .collect()
    })
}

/// A `TextTokenizer` for `config`, sharing truncating tokenizers per (fixture, length) so that
/// each input does not clone a vocabulary. Built with the same budgets as `TextTokenizer::new`.
fn text_tokenizer(which: usize, config: &ModelConfig) -> Result<TextTokenizer> {
    type Cache = Mutex<HashMap<(usize, usize), Arc<Tokenizer>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let (q, d) = TextTokenizer::budgets(config)?;
    let base = &fixtures()[which].tokenizer;
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if cache.len() > 64 {
        cache.clear();
    }
    let mut get = |len: usize| -> Result<Arc<Tokenizer>> {
        if let Some(t) = cache.get(&(which, len)) {
            return Ok(t.clone());
        }
        let t = Arc::new(truncating(base, len)?);
        cache.insert((which, len), t.clone());
        Ok(t)
    };
    let (qt, dt) = (get(q)?, get(d)?);
    Ok(TextTokenizer::from_parts(qt, dt, config))
}

fn coded(e: &EncodeError, allowed: &[&str]) {
    assert!(
        allowed.contains(&e.code()),
        "unexpected error {}: {e}",
        e.code()
    );
}

/// What every tokenized text must satisfy, whatever the configuration.
fn check_tokenized(which: usize, config: &ModelConfig, kind: Kind, t: &Tokenized) {
    let n = t.input_ids.len();
    assert!(
        t.attention_mask.len() == n && t.token_type_ids.len() == n && t.keep.len() == n,
        "ragged tokenization"
    );
    let (budget, prefix) = match kind {
        Kind::Query => (config.query_length, config.query_prefix_id),
        Kind::Document => (config.document_length, config.document_prefix_id),
    };
    assert!(n <= budget, "{n} tokens exceed the length budget {budget}");
    if let Some(p) = prefix {
        assert!(n >= 2, "the prefix needs a first token");
        assert_eq!(t.input_ids[1], p, "prefix id not at position 1");
    }
    let vocab = fixtures()[which].vocab;
    assert!(
        t.input_ids.iter().all(|&id| id < vocab),
        "a token id is outside the vocabulary ({vocab})"
    );
    assert!(t.attention_mask.iter().all(|&m| m <= 1));
    match kind {
        Kind::Query if config.do_query_expansion => {
            assert_eq!(
                n, config.query_length,
                "an expanded query has queryLength ids"
            );
            assert!(t.keep.iter().all(|&k| k));
        }
        Kind::Query => {
            assert!(t
                .keep
                .iter()
                .zip(&t.attention_mask)
                .all(|(&k, &m)| k == (m == 1)));
        }
        Kind::Document => {
            for ((&k, &m), id) in t.keep.iter().zip(&t.attention_mask).zip(&t.input_ids) {
                assert_eq!(k, m == 1 && config.skiplist_ids.binary_search(id).is_err());
            }
        }
    }
}

const SAMPLES: [&str; 4] = [
    "What is late interaction?",
    "",
    " \u{1c}Ünïcödé ΣΊΣΥΦΟΣ, punctuation!!! and [MASK] [Q] [D] tokens\u{feff} ",
    "a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a",
];

/// Model-folder configuration parsing. Input: control bytes, then the seven files of
/// [`CONFIG_FILES`], separated by 0xFF (an empty part is an absent file). Control byte 0:
/// bits 0 and 6 pick the tokenizer ([`fixture_dirs`]); bit 1 applies overrides from bytes 1–2
/// (query and document lengths) and bits 2–4 (expansion, attention to expansion, lowercase).
/// The result must be a configuration or `MODEL_INVALID` / `MODEL_NOT_FOUND` /
/// `INVALID_ARGUMENT`; a configuration must tokenize sample texts within its budgets.
pub fn model_config(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0xFF);
    let ctrl = parts.next().unwrap_or(&[]);
    let c = |i: usize| ctrl.get(i).copied().unwrap_or(0);
    let which = pick(c(0));
    let mut files = MemFiles::default();
    for (slot, p) in files.files.iter_mut().zip(parts) {
        *slot = (!p.is_empty()).then(|| String::from_utf8_lossy(p).into_owned());
    }
    let overrides = if c(0) & 2 != 0 {
        ConfigOverrides {
            query_length: Some(c(1) as usize),
            document_length: Some(c(2) as usize),
            do_query_expansion: Some(c(0) & 4 != 0),
            attend_to_expansion_tokens: Some(c(0) & 8 != 0),
            do_lower_case: Some(c(0) & 16 != 0),
            ..Default::default()
        }
    } else {
        ConfigOverrides::default()
    };
    let tok = &fixtures()[which].tokenizer;
    let config = match read_config(&files, tok, &overrides) {
        Ok(c) => c,
        Err(e) => {
            return coded(
                &e,
                &["MODEL_INVALID", "MODEL_NOT_FOUND", "INVALID_ARGUMENT"],
            )
        }
    };
    let vocab = fixtures()[which].vocab;
    assert!(
        config.mask_token_id < vocab,
        "mask token id outside the vocabulary"
    );
    assert!(
        config.pad_token_id < vocab,
        "pad token id outside the vocabulary"
    );
    let tt = match text_tokenizer(which, &config) {
        Ok(t) => t,
        Err(e) => panic!("a resolved configuration must build its tokenizer: {e}"),
    };
    for text in SAMPLES {
        for kind in [Kind::Query, Kind::Document] {
            match tt.tokenize(text, kind) {
                Ok(t) => check_tokenized(which, &config, kind, &t),
                Err(e) => coded(&e, &["TOKENIZE_FAILED"]),
            }
        }
    }
}

/// Text → `TextTokenizer::tokenize` → ids, with the fixtures' own configuration. Input:
/// control bytes 0–1, then the text (lossy UTF-8). Byte 0: bits 0 and 6 the tokenizer
/// ([`fixture_dirs`]), bit 1 document instead of query, bit 2 no query expansion, bit 3 attend to
/// expansion tokens, bit 4 lowercase, bit 5 no prefixes. Byte 1: query length (bits 0–1:
/// 4, 8, 32, 64) and document length (bits 2–3: 4, 16, 180, 512).
pub fn tokenize(data: &[u8]) {
    let (c0, c1) = (
        data.first().copied().unwrap_or(0),
        data.get(1).copied().unwrap_or(0),
    );
    let text = String::from_utf8_lossy(data.get(2..).unwrap_or(&[]));
    let which = pick(c0);
    let kind = if c0 & 2 != 0 {
        Kind::Document
    } else {
        Kind::Query
    };
    let no_prefix = (c0 & 32 != 0).then(String::new);
    let overrides = ConfigOverrides {
        query_length: Some([4, 8, 32, 64][usize::from(c1 & 3)]),
        document_length: Some([4, 16, 180, 512][usize::from((c1 >> 2) & 3)]),
        query_prefix: no_prefix.clone(),
        document_prefix: no_prefix,
        do_query_expansion: Some(c0 & 4 == 0),
        attend_to_expansion_tokens: Some(c0 & 8 != 0),
        do_lower_case: Some(c0 & 16 != 0),
        ..Default::default()
    };
    // The configuration depends on the control bits only: resolve each once per process.
    type Configs = Mutex<HashMap<(usize, u8, u8), Arc<ModelConfig>>>;
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    let key = (which, c0 & 0b0011_1100, c1 & 0b1111);
    let config = {
        let mut configs = CONFIGS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let f = &fixtures()[which];
        configs
            .entry(key)
            .or_insert_with(|| {
                Arc::new(
                    read_config(&f.files, &f.tokenizer, &overrides)
                        .expect("the fixture configurations resolve"),
                )
            })
            .clone()
    };
    let tt = text_tokenizer(which, &config).expect("fixture tokenizer");
    match tt.tokenize(&text, kind) {
        Ok(t) => check_tokenized(which, &config, kind, &t),
        Err(e) => coded(&e, &["TOKENIZE_FAILED"]),
    }
}
