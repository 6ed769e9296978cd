//! The Node.js binding: thin `#[napi]` wrappers over the engine crates, one module per TypeScript
//! module (`src/*.ts`).
//!
//! Nothing here knows ColBERT or PLAID; it converts arguments, schedules engine calls on the
//! shared thread budget and settles promises. Errors cross as `CODE: message` (see [`errors`]).

#![deny(clippy::unwrap_used)]

pub mod embeddings;
pub mod errors;
pub mod file_lock;
pub mod model;
pub mod plaid_index;
pub mod progress;
pub mod runtime;
pub mod standalone;
pub mod tasks;
