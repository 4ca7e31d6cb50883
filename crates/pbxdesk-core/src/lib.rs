//! pbxdesk's core: validated domain values, the workspace store (SQLite or PostgreSQL),
//! secrets, and the services every front end (desktop app, CLI) calls.
//!
//! Architecture invariant: nothing here depends on Tauri or any UI; this crate builds and
//! tests without a display.

pub mod demo;
pub mod domain;
pub mod error;
pub mod model;
pub mod paths;
pub mod secret;
pub mod service;
pub mod store;
pub mod update;

pub use error::{Error, ErrorCode, FieldProblem, Problems, Refusal, Result, ValidationError};
pub use service::{Actor, Clock, KeySource, Location, OpenOptions, Workspace};
