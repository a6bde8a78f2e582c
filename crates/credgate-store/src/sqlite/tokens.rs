//! Issued tokens, kept by digest.

include!("../shared/tokens.rs");
