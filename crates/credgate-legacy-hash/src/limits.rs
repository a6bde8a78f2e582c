//! Ceilings on a hash's parameters, so that a hostile import file cannot make one verify take
//! minutes or gigabytes.

use serde::Deserialize;

use crate::{Params, ParseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most PBKDF2 iterations, sha-crypt rounds, phpass rounds (2^n) or digest rounds.
    pub max_iterations: u32,
    /// Most memory of one argon2 or scrypt verify, in KiB.
    pub max_memory_kib: u32,
    /// Most argon2 passes (t).
    pub max_passes: u32,
    /// Most argon2 lanes or scrypt parallelism (p).
    pub max_parallelism: u32,
    /// Highest cost of a bcrypt inside a legacy format.
    pub max_bcrypt_cost: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_iterations: 2_000_000,
            max_memory_kib: 256 * 1024,
            max_passes: 16,
            max_parallelism: 16,
            max_bcrypt_cost: 16,
        }
    }
}

impl Limits {
    pub(crate) fn iterations(&self, n: u64) -> Result<(), ParseError> {
        if n == 0 {
            return Err(ParseError::new("iteration count is zero"));
        }
        if n > u64::from(self.max_iterations) {
            return Err(ParseError::new(format!(
                "iteration count {n} is above the ceiling of {}",
                self.max_iterations
            )));
        }
        Ok(())
    }

    pub(crate) fn memory_kib(&self, kib: u64) -> Result<(), ParseError> {
        if kib > u64::from(self.max_memory_kib) {
            return Err(ParseError::new(format!(
                "memory cost of {kib} KiB is above the ceiling of {} KiB",
                self.max_memory_kib
            )));
        }
        Ok(())
    }

    pub(crate) fn parallelism(&self, p: u32) -> Result<(), ParseError> {
        if p == 0 || p > self.max_parallelism {
            return Err(ParseError::new(format!(
                "parallelism {p} is outside 1..={}",
                self.max_parallelism
            )));
        }
        Ok(())
    }
}

impl Limits {
    /// Refuses parameters above a ceiling or that the primitive cannot run.
    pub(crate) fn check(&self, params: &Params) -> Result<(), ParseError> {
        match params {
            Params::Pbkdf2 {
                iterations, len, ..
            } => {
                self.iterations(u64::from(*iterations))?;
                if !(1..=128).contains(len) {
                    return Err(ParseError::new("impossible PBKDF2 hash length"));
                }
            }
            Params::Argon2 { m, t, p, .. } => {
                self.memory_kib(u64::from(*m))?;
                self.parallelism(*p)?;
                if *t == 0 || *t > self.max_passes || u64::from(*m) < 8 * u64::from(*p) {
                    return Err(ParseError::new(format!(
                        "argon2 passes must be 1 to {} and memory at least 8 KiB per lane",
                        self.max_passes
                    )));
                }
            }
            Params::Scrypt { log_n, r, p, .. } => {
                if *log_n == 0 || *log_n > 30 || *r == 0 {
                    return Err(ParseError::new("impossible scrypt parameters"));
                }
                self.parallelism(*p)?;
                self.memory_kib((128 * u64::from(*r)) << log_n >> 10)?;
                self.iterations(u64::from(*p) << log_n)?;
            }
            Params::ShaCrypt { rounds, .. } => self.iterations(u64::from(*rounds))?,
            Params::Phpass { count_log2, .. } => self.iterations(1u64 << count_log2)?,
            Params::Crafter { iterations, .. } => self.iterations(u64::from(*iterations))?,
            Params::Bcrypt { cost, .. } => {
                if !(4..=self.max_bcrypt_cost).contains(cost) {
                    return Err(ParseError::new(format!(
                        "bcrypt cost {cost} is outside 4..={}",
                        self.max_bcrypt_cost
                    )));
                }
            }
            Params::Md5Crypt { .. } | Params::Salted { .. } | Params::Auth0(_) => {}
        }
        Ok(())
    }
}
