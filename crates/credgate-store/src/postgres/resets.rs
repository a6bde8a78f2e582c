//! Password resets (tokens and codes, by digest, each usable once) and security answers.

include!("../shared/resets.rs");
