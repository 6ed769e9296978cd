//! PLAID index (work in progress).
