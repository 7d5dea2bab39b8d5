//! The `regex` names oci-spec uses, from regex-lite (see Cargo.toml for why). regex-lite's
//! `\d` is ASCII-only, which is what execCPUAffinity's CPU numbers are anyway.
pub use regex_lite::{Captures, Error, Match, Regex, RegexBuilder};
