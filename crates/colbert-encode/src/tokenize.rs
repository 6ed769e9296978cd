//! PyLate's tokenization: strip (and maybe lowercase) the text, tokenize it truncated to the length
//! budget minus the prefix, insert the prefix token id after the first token, pad queries with the
//! mask token when query expansion is on, and mark which output rows are kept.

use std::sync::Arc;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::config::ModelConfig;
use crate::error::{EncodeError, Result};
use crate::text::preprocess;

/// Whether a text is encoded as a query or as a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Document,
}

/// One tokenized text, unpadded except for query expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    pub input_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    /// Which positions become output rows (padding and skiplisted tokens are dropped from
    /// documents; every position of an expanded query is kept).
    pub keep: Vec<bool>,
}

/// Tokenizes texts for one model, with truncation set for queries and for documents.
pub struct TextTokenizer {
    query: Arc<Tokenizer>,
    document: Arc<Tokenizer>,
    config: ModelConfig,
}

pub(crate) fn truncating(base: &Tokenizer, max_length: usize) -> Result<Tokenizer> {
    let mut tok = base.clone();
    tok.with_truncation(Some(TruncationParams {
        max_length,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
        direction: TruncationDirection::Right,
    }))
    .map_err(|e| EncodeError::ModelInvalid(format!("cannot configure truncation: {e}")))?;
    Ok(tok)
}

impl TextTokenizer {
    pub fn new(base: &Tokenizer, config: &ModelConfig) -> Result<Self> {
        let (q, d) = Self::budgets(config)?;
        Ok(Self::from_parts(
            Arc::new(truncating(base, q)?),
            Arc::new(truncating(base, d)?),
            config,
        ))
    }

    /// The truncation lengths of the query and document tokenizers. The prefix is inserted
    /// after tokenizing, so the tokenizer gets one position less.
    pub(crate) fn budgets(config: &ModelConfig) -> Result<(usize, usize)> {
        let q = config
            .query_length
            .checked_sub(usize::from(config.query_prefix_id.is_some()));
        let d = config
            .document_length
            .checked_sub(usize::from(config.document_prefix_id.is_some()));
        match (q, d) {
            (Some(q), Some(d)) if q > 0 && d > 0 => Ok((q, d)),
            _ => Err(EncodeError::InvalidArgument(format!(
                "queryLength ({}) and documentLength ({}) leave no room for tokens",
                config.query_length, config.document_length
            ))),
        }
    }

    /// From tokenizers already truncated to [`Self::budgets`] (shared, e.g. by the fuzzing
    /// harness's cache).
    pub(crate) fn from_parts(
        query: Arc<Tokenizer>,
        document: Arc<Tokenizer>,
        config: &ModelConfig,
    ) -> Self {
        Self {
            query,
            document,
            config: config.clone(),
        }
    }

    /// The text as the tokenizer sees it (prompt, Python strip, optional lowercase).
    pub fn preprocess(&self, text: &str) -> String {
        if self.config.prompt.is_empty() {
            preprocess(text, self.config.do_lower_case)
        } else {
            preprocess(
                &format!("{}{text}", self.config.prompt),
                self.config.do_lower_case,
            )
        }
    }

    /// Tokenizes one text exactly as `ColBERT.tokenize([text], is_query)` does.
    pub fn tokenize(&self, text: &str, kind: Kind) -> Result<Tokenized> {
        let cfg = &self.config;
        let (tok, prefix) = match kind {
            Kind::Query => (&self.query, cfg.query_prefix_id),
            Kind::Document => (&self.document, cfg.document_prefix_id),
        };
        let clean = self.preprocess(text);
        let enc = tok.encode_fast(clean.as_str(), true).map_err(|e| {
            EncodeError::Tokenize(format!("cannot tokenize {:?}: {e}", short(text)))
        })?;
        let mut ids = enc.get_ids().to_vec();
        let mut mask = enc.get_attention_mask().to_vec();
        let mut types = enc.get_type_ids().to_vec();
        if let Some(p) = prefix {
            let at = ids.len().min(1);
            ids.insert(at, p);
            mask.insert(at, 1);
            types.insert(at, 0);
        }
        let expand = kind == Kind::Query && cfg.do_query_expansion;
        if expand {
            let fill = if cfg.attend_to_expansion_tokens { 1 } else { 0 };
            while ids.len() < cfg.query_length {
                ids.push(cfg.mask_token_id);
                mask.push(fill);
                types.push(0);
            }
            if cfg.attend_to_expansion_tokens {
                mask.iter_mut().for_each(|m| *m = 1);
            }
        }
        let keep = match kind {
            Kind::Query if expand => vec![true; ids.len()],
            Kind::Query => mask.iter().map(|&m| m == 1).collect(),
            Kind::Document => ids
                .iter()
                .zip(&mask)
                .map(|(id, &m)| m == 1 && cfg.skiplist_ids.binary_search(id).is_err())
                .collect(),
        };
        Ok(Tokenized {
            input_ids: ids,
            attention_mask: mask,
            token_type_ids: types,
            keep,
        })
    }
}

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}
