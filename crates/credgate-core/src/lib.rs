//! credgate-core: the canonical credential model and the services every dialect calls.
//! It knows nothing of HTTP or SQL: requests arrive as [`Command`]s, storage is the [`Store`] trait.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod admin;
pub mod afterwards;
pub mod cache;
mod cache_store;
pub mod clock;
pub mod command;
pub mod error;
pub mod hasher;
pub mod import;
pub mod legacy;
mod lifetimes;
pub mod limits;
pub mod model;
pub mod notify;
pub mod overload;
pub mod passthrough;
pub mod policy;
mod priority;
pub mod rehash;
mod reset;
pub mod secret;
pub mod service;
mod session;
pub mod shadow;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod totp;
pub mod two_factor;
pub mod two_factor_model;
pub mod upstream;
pub mod upstream_reset;

pub use cache::{Change, ChangeFeed, ChangeSink};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use command::{
    Access, AppKey, ChangePassword, ClientCredentials, Command, Grant, IssuedToken, NewUserSpec,
    Outcome, Request, Subject, TokenRequest,
};
pub use error::{Error, FieldProblem, FieldReason, PolicyRule};
pub use lifetimes::TokenLifetimes;
pub use limits::LimitConfig;
pub use model::{RequestMeta, ResetKind, TokenKind, User};
pub use notify::{Notifier, ResetNotice};
pub use passthrough::{UpstreamAuthority, UpstreamChange, UpstreamLogin, UpstreamSessionRecord};
pub use policy::PolicyConfig;
pub use secret::{Password, SecretToken};
pub use service::{CoreConfig, CredentialService};
pub use store::{Store, StoreError};
pub use two_factor_model::{LoginChallenge, TwoFactor, TwoFactorMethod};
pub use upstream::{UpstreamAccount, UpstreamDirectory, UpstreamReset, UpstreamVerdict};
