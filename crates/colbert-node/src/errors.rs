//! Errors cross into JavaScript as `CODE: message`; the TypeScript layer (`src/errors.ts`) turns
//! them into `ColbertError` with that `code`.

use colbert_embeddings::EmbeddingsError;
use colbert_encode::EncodeError;
use colbert_plaid::PlaidError;
use napi::bindgen_prelude::*;
use napi::JsDeferred;

pub fn encode_error(e: EncodeError) -> Error {
    Error::from_reason(format!("{}: {e}", e.code()))
}

pub fn plaid_error(e: PlaidError) -> Error {
    Error::from_reason(format!("{}: {e}", e.code()))
}

pub fn embeddings_error(e: EmbeddingsError) -> Error {
    Error::from_reason(format!("INVALID_ARGUMENT: {e}"))
}

pub fn invalid(msg: impl std::fmt::Display) -> Error {
    Error::from_reason(format!("INVALID_ARGUMENT: {msg}"))
}

pub fn internal(msg: impl std::fmt::Display) -> Error {
    Error::from_reason(format!("INTERNAL: {msg}"))
}

/// A promise settled from another thread.
pub type Settle<T> = JsDeferred<T, Box<dyn FnOnce(Env) -> Result<T> + Send>>;
