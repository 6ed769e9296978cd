//! Errors cross into JavaScript as `CODE: message`; the TypeScript layer (`src/errors.ts`) turns
//! them into `ColbertError` with that `code`.
//!
//! Every engine error implements [`CodedError`], so one conversion serves them all: inside a task
//! `?` turns any of them into a [`Coded`]; a synchronous entry point calls [`OrThrow::or_throw`].

use colbert_core::CodedError;
use napi::bindgen_prelude::*;

/// An error on its way to JavaScript.
#[derive(Debug)]
pub struct Coded {
    code: &'static str,
    message: String,
}

impl<E: CodedError> From<E> for Coded {
    fn from(e: E) -> Self {
        Coded {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<Coded> for Error {
    fn from(c: Coded) -> Self {
        Error::from_reason(format!("{}: {}", c.code, c.message))
    }
}

/// A result whose error is on its way to JavaScript.
pub type Outcome<T> = std::result::Result<T, Coded>;

/// Engine results as napi results, for synchronous entry points.
pub trait OrThrow<T> {
    fn or_throw(self) -> Result<T>;
}

impl<T, E: CodedError> OrThrow<T> for std::result::Result<T, E> {
    fn or_throw(self) -> Result<T> {
        self.map_err(|e| Coded::from(e).into())
    }
}

pub fn invalid(msg: impl std::fmt::Display) -> Coded {
    Coded {
        code: "INVALID_ARGUMENT",
        message: msg.to_string(),
    }
}

pub fn internal(msg: impl std::fmt::Display) -> Coded {
    Coded {
        code: "INTERNAL",
        message: msg.to_string(),
    }
}

pub fn closed(msg: impl std::fmt::Display) -> Coded {
    Coded {
        code: "CLOSED",
        message: msg.to_string(),
    }
}
