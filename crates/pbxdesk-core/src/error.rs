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

impl ValidationError {
    /// What is wrong, without the field's name: for showing next to the field itself.
    pub fn explain(&self) -> String {
        if self.value.is_empty() {
            self.rule.clone()
        } else {
            format!("\"{}\" is not allowed: {}", self.value, self.rule)
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.explain())
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

/// One wrong input field as the front ends show it: the field, and what is wrong with it worded
/// for showing next to that field (without its name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// Every field's error of one input, gathered so the person sees them all at once rather than
/// one per attempt. `finish` gives one error as `Error::Validation`, several as `Error::Invalid`.
#[derive(Debug, Default)]
pub struct Problems(Vec<ValidationError>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value when it is good; else its error is kept and `None` returned.
    pub fn take<T>(&mut self, r: Result<T, ValidationError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    pub fn push(&mut self, e: ValidationError) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish(mut self) -> Result<(), Error> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(Error::Validation(self.0.remove(0))),
            _ => Err(Error::Invalid(self.0)),
        }
    }
}

fn joined(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Validation(ValidationError),
    /// Two or more fields of one input are wrong (each as a `Validation` would be).
    #[error("{}", joined(.0))]
    Invalid(Vec<ValidationError>),
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
    /// Too much of one kind of work waits already (logins queued for their argon2 check).
    #[error("{0}")]
    Overloaded(String),
    /// A storage failure that is not the user's doing. The detail goes to the log, not to the UI.
    #[error("workspace storage failed: {0}")]
    Store(String),
    /// A guarded operation (an apply) will not start, and why; nothing was changed. Each front
    /// end words its own hint (the CLI names a flag, the app offers a button).
    #[error("{0}")]
    Refused(Refusal),
    /// The PBX (SSH, AMI or its database) cannot be reached; nothing was changed.
    #[error("{0}")]
    Unreachable(String),
}

/// Why an apply will not start. Nothing on the PBX was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// The render has errors (each as "entity: message").
    #[error("the render has {} error(s); fix them first: {}", errors.len(), errors.join("; "))]
    RenderErrors { errors: Vec<String> },
    /// The PBX's SSH host key was never pinned.
    #[error("the host key of {pbx} is not trusted yet")]
    Untrusted { pbx: String },
    #[error("{pbx} has no earlier apply on record to go back to")]
    NoEarlierApply { pbx: String },
    /// pbxdesk's generated files on the PBX differ from the last apply's.
    #[error("the PBX was changed by hand since the last apply ({})", files.join(", "))]
    Drift { files: Vec<String> },
    /// A core file lacks the line that reads pbxdesk's generated files.
    #[error("{file} on the PBX lacks the line `{line}`")]
    MissingInclude { file: String, line: String },
    /// No extensions.conf in the profile's config folder.
    #[error("{file} does not exist on the PBX: is the profile's config folder Asterisk's?")]
    NoDialplan { file: String },
    /// sorcery.conf keeps these PJSIP object types out of the config files (trunks would not load).
    #[error("sorcery.conf on the PBX maps {} to realtime only, so Asterisk would ignore the trunk files of this render; {fix}", types.join(", "))]
    SorceryUnmapped { types: Vec<String>, fix: String },
    /// Another apply holds the PBX's lock.
    #[error("another apply to this PBX is running: {owner} since {since} (Unix ms)")]
    Locked {
        owner: String,
        #[cfg_attr(feature = "specta", specta(type = f64))]
        since: i64,
    },
    /// A teammate's apply to the PBX runs from the same team workspace.
    #[error("another apply to {pbx} is running from this team's workspace")]
    TeamLocked { pbx: String },
    /// A database setting cannot go into the mysql option file the PBX's rollback uses.
    #[error("the database setting {field} holds a line break; the PBX's rollback cannot use it")]
    DbSetting { field: String },
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Refused(r)
    }
}

impl Error {
    pub fn not_found(entity: &'static str, key: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            key: format!("\"{}\"", printable(&key.to_string())),
        }
    }

    /// The input fields this error concerns, each with its rule (empty unless validation).
    pub fn fields(&self) -> &[ValidationError] {
        match self {
            Error::Validation(v) => std::slice::from_ref(v),
            Error::Invalid(list) => list,
            _ => &[],
        }
    }

    /// [`Error::fields`] as each front end shows them.
    pub fn field_problems(&self) -> Vec<FieldProblem> {
        self.fields()
            .iter()
            .map(|v| FieldProblem {
                field: v.field.clone(),
                message: v.explain(),
            })
            .collect()
    }

    /// A stable code for callers that branch (UI, CLI exit codes).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Validation(_) | Error::Invalid(_) => ErrorCode::Validation,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Error::Key(_) => ErrorCode::Key,
            Error::Busy | Error::Overloaded(_) => ErrorCode::Busy,
            Error::Store(_) => ErrorCode::Internal,
            Error::Refused(_) => ErrorCode::Refused,
            Error::Unreachable(_) => ErrorCode::Unreachable,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// An apply refused before it changed anything (see [`Refusal`]).
    Refused,
    /// The PBX cannot be reached.
    Unreachable,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error's text followed by its causes' (an HTTP client's own text, "error sending request",
/// says nothing of the refused connection or the certificate behind it).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
