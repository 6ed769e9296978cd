//! Reading a model folder: which files it has and the PyLate settings that drive tokenization.
//!
//! Two layouts are understood:
//! - a PyLate (sentence-transformers) folder with ONNX weights added: `config_sentence_transformers.json`,
//!   `modules.json`, `N_Dense/config.json`, `sentence_bert_config.json`, `tokenizer.json`, `model.onnx`
//!   and optionally `model_int8.onnx` (what `tools/export_onnx.py` writes);
//! - the layout of LightOn's `pylate-onnx-export`: `model.onnx`, `model_int8.onnx`, `tokenizer.json`,
//!   `onnx_config.json`.
//!
//! Every setting can be overridden by [`ConfigOverrides`], as PyLate's constructor arguments do.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Tokenizer;

use crate::error::{EncodeError, Result};

/// The largest query or document length accepted (tokens; long-context encoders reach 8,192).
pub const MAX_LENGTH: usize = 65_536;

/// PyLate's default skiplist: Python's `string.punctuation`.
pub const DEFAULT_SKIPLIST: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The settings that decide how texts become token embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Width of one token embedding (the last Dense layer's `out_features`).
    pub dim: usize,
    /// Total query length, CLS, prefix, SEP and expansion tokens included.
    pub query_length: usize,
    /// Maximum document length, CLS, prefix and SEP included.
    pub document_length: usize,
    pub query_prefix: String,
    pub document_prefix: String,
    /// Token id inserted after the first token of a query (`None` when the prefix is empty).
    pub query_prefix_id: Option<u32>,
    pub document_prefix_id: Option<u32>,
    /// Pad queries to `query_length` with the mask token and keep every position.
    pub do_query_expansion: bool,
    /// Let real tokens attend to the expansion tokens (attention 1 instead of 0).
    pub attend_to_expansion_tokens: bool,
    pub skiplist_words: Vec<String>,
    /// Token ids removed from document outputs.
    pub skiplist_ids: Vec<u32>,
    /// Apply Python's `str.lower()` before tokenizing.
    pub do_lower_case: bool,
    /// The mask token id, used for query expansion and for padding (PyLate sets pad = mask).
    pub mask_token_id: u32,
    pub pad_token_id: u32,
    /// Text prepended to every input (`default_prompt_name` of sentence-transformers), usually empty.
    pub prompt: String,
}

/// Overrides of the folder's settings, like PyLate's constructor arguments.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    pub query_length: Option<usize>,
    pub document_length: Option<usize>,
    pub query_prefix: Option<String>,
    pub document_prefix: Option<String>,
    pub do_query_expansion: Option<bool>,
    pub attend_to_expansion_tokens: Option<bool>,
    pub skiplist_words: Option<Vec<String>>,
    pub do_lower_case: Option<bool>,
}

/// Which ONNX file to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// `model.onnx` when present, else `model_int8.onnx`.
    #[default]
    Auto,
    /// `model.onnx`.
    Fp32,
    /// `model_int8.onnx` (dynamic int8 quantization).
    Int8,
}

/// A model folder resolved to its files and settings.
pub struct ModelFolder {
    pub dir: PathBuf,
    pub onnx_path: PathBuf,
    pub tokenizer: Tokenizer,
    pub config: ModelConfig,
}

/// Where the JSON files of a model folder come from: the folder itself or, for the fuzzing
/// harness, texts held in memory. Paths are relative to the folder.
pub(crate) trait ConfigFiles {
    /// The path named in messages.
    fn path(&self, rel: &Path) -> PathBuf;
    /// The text of a file that must exist (`MODEL_NOT_FOUND` when it does not).
    fn required(&self, rel: &Path) -> Result<String>;
    /// The text of a file that may be absent.
    fn optional(&self, rel: &Path) -> Result<Option<String>>;
}

/// The files of a model folder on disk.
struct Folder<'a>(&'a Path);

impl ConfigFiles for Folder<'_> {
    fn path(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.0.to_path_buf()
        } else {
            self.0.join(rel)
        }
    }

    fn required(&self, rel: &Path) -> Result<String> {
        let path = self.path(rel);
        std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EncodeError::ModelNotFound(format!("{} does not exist", path.display()))
            } else {
                EncodeError::invalid_file(&path, format!("cannot be read: {e}"))
            }
        })
    }

    fn optional(&self, rel: &Path) -> Result<Option<String>> {
        if self.path(rel).is_file() {
            self.required(rel).map(Some)
        } else {
            Ok(None)
        }
    }
}

fn parse_json(files: &dyn ConfigFiles, rel: &Path, text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| EncodeError::invalid_file(&files.path(rel), format!("is not valid JSON: {e}")))
}

fn read_json(files: &dyn ConfigFiles, rel: &Path) -> Result<Value> {
    parse_json(files, rel, &files.required(rel)?)
}

fn read_optional_json(files: &dyn ConfigFiles, rel: &Path) -> Result<Option<Value>> {
    match files.optional(rel)? {
        Some(text) => parse_json(files, rel, &text).map(Some),
        None => Ok(None),
    }
}

/// A settings file, which must hold a JSON object (a list or a number would otherwise be read
/// as "no settings" and the defaults used silently).
fn settings(files: &dyn ConfigFiles, rel: &Path, v: Value) -> Result<Value> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(EncodeError::invalid_file(
            &files.path(rel),
            "must hold a JSON object",
        ))
    }
}

fn read_settings(files: &dyn ConfigFiles, rel: &Path) -> Result<Value> {
    settings(files, rel, read_json(files, rel)?)
}

fn read_optional_settings(files: &dyn ConfigFiles, rel: &Path) -> Result<Option<Value>> {
    read_optional_json(files, rel)?
        .map(|v| settings(files, rel, v))
        .transpose()
}

/// The longest sequence the backbone takes, from transformers' `config.json`
/// (`max_position_embeddings`; RoBERTa-style models start positions after the pad id, so
/// they take `pad_token_id + 1` fewer). `None` when the folder does not say.
fn max_positions(files: &dyn ConfigFiles) -> Result<Option<(usize, PathBuf)>> {
    let rel = Path::new("config.json");
    let path = files.path(rel);
    let Some(c) = read_optional_settings(files, rel)? else {
        return Ok(None);
    };
    let Some(max) = get_usize(&c, "max_position_embeddings", &path)? else {
        return Ok(None);
    };
    let model_type = get_string(&c, "model_type", &path)?.unwrap_or_default();
    let offset = if matches!(model_type.as_str(), "roberta" | "xlm-roberta" | "camembert") {
        get_usize(&c, "pad_token_id", &path)?.unwrap_or(1) + 1
    } else {
        0
    };
    Ok(Some((max.saturating_sub(offset), path)))
}

fn get_usize(v: &Value, key: &str, file: &Path) -> Result<Option<usize>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            EncodeError::invalid_file(file, format!("`{key}` must be a non-negative integer"))
        }),
    }
}

fn get_token_id(v: &Value, key: &str, file: &Path) -> Result<Option<u32>> {
    get_usize(v, key, file)?
        .map(|n| {
            u32::try_from(n).map_err(|_| {
                EncodeError::invalid_file(file, format!("`{key}` ({n}) is not a token id"))
            })
        })
        .transpose()
}

fn get_bool(v: &Value, key: &str, file: &Path) -> Result<Option<bool>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x.as_bool().map(Some).ok_or_else(|| {
            EncodeError::invalid_file(file, format!("`{key}` must be true or false"))
        }),
    }
}

fn get_string(v: &Value, key: &str, file: &Path) -> Result<Option<String>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(EncodeError::invalid_file(
            file,
            format!("`{key}` must be a string"),
        )),
    }
}

fn get_strings(v: &Value, key: &str, file: &Path) -> Result<Option<Vec<String>>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                EncodeError::invalid_file(file, format!("`{key}` must be a list of strings"))
            }),
        Some(_) => Err(EncodeError::invalid_file(
            file,
            format!("`{key}` must be a list of strings"),
        )),
    }
}

/// A special token as written by transformers: a string or `{ "content": "..." }`.
fn special_token(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The settings collected from whichever files the folder has, before overrides.
#[derive(Default)]
struct Raw {
    dim: Option<usize>,
    query_length: Option<usize>,
    document_length: Option<usize>,
    query_prefix: Option<String>,
    document_prefix: Option<String>,
    do_query_expansion: Option<bool>,
    attend_to_expansion_tokens: Option<bool>,
    skiplist_words: Option<Vec<String>>,
    do_lower_case: Option<bool>,
    mask_token_id: Option<u32>,
    pad_token_id: Option<u32>,
    prompt: Option<String>,
}

fn read_sentence_transformers(files: &dyn ConfigFiles, raw: &mut Raw) -> Result<bool> {
    let rel = Path::new("config_sentence_transformers.json");
    let path = files.path(rel);
    let Some(st) = read_optional_settings(files, rel)? else {
        return Ok(false);
    };
    raw.query_length = get_usize(&st, "query_length", &path)?;
    raw.document_length = get_usize(&st, "document_length", &path)?;
    raw.query_prefix = get_string(&st, "query_prefix", &path)?;
    raw.document_prefix = get_string(&st, "document_prefix", &path)?;
    raw.do_query_expansion = get_bool(&st, "do_query_expansion", &path)?;
    raw.attend_to_expansion_tokens = get_bool(&st, "attend_to_expansion_tokens", &path)?;
    raw.skiplist_words = get_strings(&st, "skiplist_words", &path)?;
    if let Some(name) = get_string(&st, "default_prompt_name", &path)? {
        let prompt = st
            .get("prompts")
            .and_then(|p| p.get(&name))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                EncodeError::invalid_file(
                    &path,
                    format!("default_prompt_name `{name}` is not in `prompts`"),
                )
            })?;
        raw.prompt = Some(prompt.to_string());
    }

    let sbert_rel = Path::new("sentence_bert_config.json");
    let sbert = files.path(sbert_rel);
    if let Some(v) = read_optional_settings(files, sbert_rel)? {
        raw.do_lower_case = get_bool(&v, "do_lower_case", &sbert)?;
    }

    // The embedding width is the out_features of the last Dense module, in modules.json order.
    let modules_rel = Path::new("modules.json");
    let modules_path = files.path(modules_rel);
    if let Some(modules) = read_optional_json(files, modules_rel)? {
        let list = modules
            .as_array()
            .ok_or_else(|| EncodeError::invalid_file(&modules_path, "must be a JSON list"))?;
        for m in list {
            let ty = m.get("type").and_then(Value::as_str).unwrap_or_default();
            if ty.ends_with("Dense") {
                let sub = m.get("path").and_then(Value::as_str).unwrap_or_default();
                let cfg_rel = Path::new(sub).join("config.json");
                let cfg_path = files.path(&cfg_rel);
                let cfg = read_settings(files, &cfg_rel)?;
                raw.dim = Some(get_usize(&cfg, "out_features", &cfg_path)?.ok_or_else(|| {
                    EncodeError::invalid_file(&cfg_path, "has no `out_features`")
                })?);
            }
        }
    }
    Ok(true)
}

fn read_onnx_export(files: &dyn ConfigFiles, raw: &mut Raw) -> Result<bool> {
    let rel = Path::new("onnx_config.json");
    let path = files.path(rel);
    let Some(c) = read_optional_settings(files, rel)? else {
        return Ok(false);
    };
    // Values from config_sentence_transformers.json (read first) take precedence.
    raw.query_length = raw.query_length.or(get_usize(&c, "query_length", &path)?);
    raw.document_length = raw
        .document_length
        .or(get_usize(&c, "document_length", &path)?);
    raw.query_prefix = raw
        .query_prefix
        .take()
        .or(get_string(&c, "query_prefix", &path)?);
    raw.document_prefix = raw
        .document_prefix
        .take()
        .or(get_string(&c, "document_prefix", &path)?);
    raw.do_query_expansion = raw
        .do_query_expansion
        .or(get_bool(&c, "do_query_expansion", &path)?);
    raw.attend_to_expansion_tokens =
        raw.attend_to_expansion_tokens
            .or(get_bool(&c, "attend_to_expansion_tokens", &path)?);
    raw.skiplist_words = raw
        .skiplist_words
        .take()
        .or(get_strings(&c, "skiplist_words", &path)?);
    raw.do_lower_case = raw.do_lower_case.or(get_bool(&c, "do_lower_case", &path)?);
    raw.dim = raw.dim.or(get_usize(&c, "embedding_dim", &path)?);
    raw.mask_token_id = get_token_id(&c, "mask_token_id", &path)?;
    raw.pad_token_id = get_token_id(&c, "pad_token_id", &path)?;
    Ok(true)
}

/// The special-token files transformers consults, in its order (absent ones skipped): read
/// once per folder, then searched for each special token.
fn special_token_files(files: &dyn ConfigFiles) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for file in ["special_tokens_map.json", "tokenizer_config.json"] {
        out.extend(read_optional_settings(files, Path::new(file))?);
    }
    Ok(out)
}

/// The id of special token `key` (`mask_token`, `eos_token`, …) as the first file naming a
/// token of the vocabulary gives it.
fn find_special(specials: &[Value], tok: &Tokenizer, key: &str) -> Option<u32> {
    specials
        .iter()
        .find_map(|v| special_token(v, key).and_then(|t| tok.token_to_id(&t)))
}

/// Finds the mask token the way transformers does (tokenizer_config / special_tokens_map), falling
/// back to the usual spellings in the vocabulary.
fn find_mask_id(specials: &[Value], tok: &Tokenizer) -> Option<u32> {
    find_special(specials, tok, "mask_token")
        .or_else(|| ["[MASK]", "<mask>"].iter().find_map(|t| tok.token_to_id(t)))
}

fn prefix_id(tok: &Tokenizer, prefix: &str, which: &str, path: &Path) -> Result<Option<u32>> {
    if prefix.is_empty() {
        return Ok(None);
    }
    tok.token_to_id(prefix).map(Some).ok_or_else(|| {
        EncodeError::invalid_file(
            path,
            format!("the {which} prefix {prefix:?} is not a token of this tokenizer; was the model saved by PyLate?"),
        )
    })
}

/// Loads the tokenizer with its stored truncation and padding switched off (PyLate sets them per
/// call; the Rust crate would otherwise apply whatever `tokenizer.json` carries).
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if !path.is_file() {
        return Err(EncodeError::ModelNotFound(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let mut tok = Tokenizer::from_file(path)
        .map_err(|e| EncodeError::invalid_file(path, format!("is not a valid tokenizer: {e}")))?;
    tok.with_padding(None);
    tok.with_truncation(None)
        .map_err(|e| EncodeError::invalid_file(path, e.to_string()))?;
    Ok(tok)
}

impl ModelFolder {
    /// Resolves a model folder: its ONNX file for `precision`, its tokenizer and its settings.
    pub fn open(dir: &Path, precision: Precision, overrides: &ConfigOverrides) -> Result<Self> {
        if !dir.is_dir() {
            return Err(EncodeError::ModelNotFound(format!(
                "model folder {} does not exist (expected a PyLate model folder with model.onnx, or a pylate-onnx-export folder)",
                dir.display()
            )));
        }
        let onnx_path = pick_onnx(dir, precision)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = load_tokenizer(&tokenizer_path)?;

        let config = read_config(&Folder(dir), &tokenizer, overrides)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            onnx_path,
            tokenizer,
            config,
        })
    }
}

fn pick_onnx(dir: &Path, precision: Precision) -> Result<PathBuf> {
    let fp32 = dir.join("model.onnx");
    let int8 = dir.join("model_int8.onnx");
    let pick = match precision {
        Precision::Fp32 => fp32,
        Precision::Int8 => int8,
        Precision::Auto if fp32.is_file() => fp32,
        Precision::Auto => int8,
    };
    if pick.is_file() {
        Ok(pick)
    } else {
        Err(EncodeError::ModelNotFound(format!(
            "{} does not exist; export the model to ONNX with tools/export_onnx.py{}",
            pick.display(),
            if precision == Precision::Int8 {
                " (it writes model_int8.onnx too)"
            } else {
                ""
            }
        )))
    }
}

/// The settings of a model folder (its JSON files, then `o`) for tokenizer `tok`.
pub(crate) fn read_config(
    files: &dyn ConfigFiles,
    tok: &Tokenizer,
    o: &ConfigOverrides,
) -> Result<ModelConfig> {
    let mut raw = Raw::default();
    let has_st = read_sentence_transformers(files, &mut raw)?;
    let has_export = read_onnx_export(files, &mut raw)?;
    if !has_st && !has_export {
        return Err(EncodeError::ModelNotFound(format!(
            "{} has neither config_sentence_transformers.json nor onnx_config.json; export the model with tools/export_onnx.py",
            files.path(Path::new("")).display()
        )));
    }
    resolve(files, tok, raw, o)
}

fn resolve(
    files: &dyn ConfigFiles,
    tok: &Tokenizer,
    raw: Raw,
    o: &ConfigOverrides,
) -> Result<ModelConfig> {
    let tok_path = files.path(Path::new("tokenizer.json"));
    let query_prefix = o
        .query_prefix
        .clone()
        .or(raw.query_prefix)
        .unwrap_or_else(|| "[Q] ".into());
    let document_prefix = o
        .document_prefix
        .clone()
        .or(raw.document_prefix)
        .unwrap_or_else(|| "[D] ".into());
    let query_prefix_id = prefix_id(tok, &query_prefix, "query", &tok_path)?;
    let document_prefix_id = prefix_id(tok, &document_prefix, "document", &tok_path)?;

    let specials = special_token_files(files)?;
    let mask = raw.mask_token_id.or_else(|| find_mask_id(&specials, tok));
    // PyLate: pad_token_id = mask id; without a mask token, EOS; failing that, the existing pad.
    let pad = match (raw.pad_token_id, mask) {
        (Some(p), _) => Some(p),
        (None, Some(m)) => Some(m),
        (None, None) => find_special(&specials, tok, "eos_token")
            .or_else(|| find_special(&specials, tok, "pad_token")),
    };
    let pad_token_id = pad.ok_or_else(|| {
        EncodeError::invalid_file(
            &tok_path,
            "has no mask, EOS or pad token to pad sequences with",
        )
    })?;
    let mask_token_id = mask.unwrap_or(pad_token_id);
    // Ids from onnx_config.json are not looked up in the vocabulary: an id outside it would
    // reach the model's embedding lookup.
    let vocab = tok.get_vocab_size(true);
    for (what, id) in [("mask", mask_token_id), ("pad", pad_token_id)] {
        if id as usize >= vocab {
            return Err(EncodeError::ModelInvalid(format!(
                "the {what} token id {id} is outside the vocabulary of {} ({vocab} tokens)",
                tok_path.display()
            )));
        }
    }

    let skiplist_words = o
        .skiplist_words
        .clone()
        .or(raw.skiplist_words)
        .unwrap_or_else(|| DEFAULT_SKIPLIST.chars().map(String::from).collect());
    // Python's convert_tokens_to_ids maps an unknown word to the unk id.
    let unk = find_special(&specials, tok, "unk_token");
    let mut skiplist_ids: Vec<u32> = skiplist_words
        .iter()
        .filter_map(|w| tok.token_to_id(w).or(unk))
        .collect();
    skiplist_ids.sort_unstable();
    skiplist_ids.dedup();

    let do_query_expansion = o
        .do_query_expansion
        .or(raw.do_query_expansion)
        .unwrap_or(true);
    // PyLate forces attend_to_expansion_tokens off without query expansion.
    let attend_to_expansion_tokens = do_query_expansion
        && o.attend_to_expansion_tokens
            .or(raw.attend_to_expansion_tokens)
            .unwrap_or(false);

    let query_length = o.query_length.or(raw.query_length).unwrap_or(32);
    let document_length = o.document_length.or(raw.document_length).unwrap_or(180);
    let min_len = 2 + usize::from(query_prefix_id.is_some());
    if query_length <= min_len || document_length <= 2 + usize::from(document_prefix_id.is_some()) {
        return Err(EncodeError::InvalidArgument(format!(
            "queryLength ({query_length}) and documentLength ({document_length}) must leave room for at least one token besides CLS, the prefix and SEP"
        )));
    }
    // Queries are padded to queryLength and batches are sized by the lengths: an unbounded
    // value (from options or a config file) would exhaust memory instead of failing.
    if query_length > MAX_LENGTH || document_length > MAX_LENGTH {
        return Err(EncodeError::InvalidArgument(format!(
            "queryLength ({query_length}) and documentLength ({document_length}) must be at most {MAX_LENGTH}"
        )));
    }
    // Longer sequences than the backbone has positions for would fail only at encode time.
    if let Some((max, path)) = max_positions(files)? {
        for (name, len, overridden) in [
            ("queryLength", query_length, o.query_length.is_some()),
            (
                "documentLength",
                document_length,
                o.document_length.is_some(),
            ),
        ] {
            if len > max {
                let msg = format!(
                    "{name} {len} exceeds the {max} positions of this model (max_position_embeddings in {})",
                    path.display()
                );
                return Err(if overridden {
                    EncodeError::InvalidArgument(format!("{msg}: pass {name} ≤ {max}"))
                } else {
                    EncodeError::ModelInvalid(format!(
                        "{msg}: the folder's settings ask for more; pass {name} ≤ {max} to override them"
                    ))
                });
            }
        }
    }
    let dim = raw.dim.unwrap_or(0);
    Ok(ModelConfig {
        dim,
        query_length,
        document_length,
        query_prefix,
        document_prefix,
        query_prefix_id,
        document_prefix_id,
        do_query_expansion,
        attend_to_expansion_tokens,
        skiplist_words,
        skiplist_ids,
        do_lower_case: o.do_lower_case.or(raw.do_lower_case).unwrap_or(false),
        mask_token_id,
        pad_token_id,
        prompt: raw.prompt.unwrap_or_default(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::fuzzing::{fixture_dirs, MemFiles};
    use colbert_core::CodedError;

    fn tiny_bert() -> (MemFiles, Tokenizer) {
        let dir = &fixture_dirs()[0];
        let tok = load_tokenizer(&dir.join("tokenizer.json")).unwrap();
        (MemFiles::read(dir), tok)
    }

    fn code(files: &MemFiles, tok: &Tokenizer, o: &ConfigOverrides) -> &'static str {
        read_config(files, tok, o).map_or_else(|e| e.code(), |_| "OK")
    }

    /// Found by fuzzing: a query length of 10^10 in config_sentence_transformers.json (or as an
    /// option) resolved, then padding a query to it exhausted memory.
    #[test]
    fn lengths_are_bounded() {
        let (files, tok) = tiny_bert();
        let none = ConfigOverrides::default();
        assert_eq!(code(&files, &tok, &none), "OK");
        let huge = files.clone().with(
            "config_sentence_transformers.json",
            Some(r#"{"query_length":10000000000}"#),
        );
        assert_eq!(code(&huge, &tok, &none), "INVALID_ARGUMENT");
        for (q, want) in [(MAX_LENGTH, "OK"), (MAX_LENGTH + 1, "INVALID_ARGUMENT")] {
            let o = ConfigOverrides {
                query_length: Some(q),
                document_length: Some(q),
                ..Default::default()
            };
            assert_eq!(code(&files, &tok, &o), want, "{q}");
        }
    }

    /// Found by fuzzing: onnx_config.json ids were truncated to u32 and never checked against
    /// the vocabulary, so a pad or mask id outside it reached the model.
    #[test]
    fn token_ids_from_onnx_config_are_checked() {
        let (_, tok) = tiny_bert();
        let none = ConfigOverrides::default();
        let export = |extra: &str| {
            MemFiles::default().with(
                "onnx_config.json",
                Some(&format!(
                    r#"{{"query_length":32,"document_length":64{extra}}}"#
                )),
            )
        };
        assert_eq!(code(&export(""), &tok, &none), "OK");
        for extra in [
            r#","mask_token_id":4294967300"#,
            r#","pad_token_id":999999"#,
            r#","mask_token_id":-1"#,
        ] {
            assert_eq!(
                code(&export(extra), &tok, &none),
                "MODEL_INVALID",
                "{extra}"
            );
        }
    }
}
