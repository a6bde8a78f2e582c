//! Users, their aliases and credentials; the password-change transaction.

include!("../shared/users.rs");
