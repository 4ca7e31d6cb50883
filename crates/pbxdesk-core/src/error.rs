//! The core's one error type. Each variant is a case a caller may branch on; the message is
//! written for the technician, never leaks SQL or secrets.

use serde::Serialize;
use std::fmt;

/// A value that broke a rule: names the field, the value (escaped, shortened) and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ValidationError {
    pub field: String,
    /// The offending value, made printable (control characters escaped, long values cut).
    /// Empty for secrets, which are never echoed.
    pub value: String,
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: &str, value: &str, rule: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            value: printable(value),
            rule: rule.into(),
        }
    }

    /// For secrets: the value is not repeated back.
    pub fn secret(field: &str, rule: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            value: String::new(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.field, self.rule)
        } else {
            write!(
                f,
                "{}: \"{}\" is not allowed: {}",
                self.field, self.value, self.rule
            )
        }
    }
}

/// Escapes control characters and cuts the value to 64 characters so an error message
/// stays one readable line whatever was typed.
pub fn printable(value: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Validation(ValidationError),
    #[error("{entity} {key} was not found")]
    NotFound { entity: &'static str, key: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// The workspace key does not open this workspace, or a secret could not be decrypted.
    #[error("{0}")]
    Key(String),
    /// Other writers held the workspace for too long; nothing was changed, try again.
    #[error("the workspace is busy with other changes; nothing was changed, try again")]
    Busy,
    /// A storage failure that is not the user's doing. The detail goes to the log, not to the UI.
    #[error("workspace storage failed: {0}")]
    Store(String),
}

impl Error {
    pub fn not_found(entity: &'static str, key: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            key: format!("\"{}\"", printable(&key.to_string())),
        }
    }

    /// A stable code for callers that branch (UI, CLI exit codes).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Validation(_) => ErrorCode::Validation,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Error::Key(_) => ErrorCode::Key,
            Error::Busy => ErrorCode::Busy,
            Error::Store(_) => ErrorCode::Internal,
        }
    }
}

impl From<ValidationError> for Error {
    fn from(e: ValidationError) -> Self {
        Error::Validation(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Validation,
    NotFound,
    Conflict,
    Forbidden,
    Unauthenticated,
    Key,
    Busy,
    Internal,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
