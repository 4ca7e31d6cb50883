//! Rendering: pure functions from a model to the text Asterisk reads. No I/O, no clock: the
//! same input gives byte-identical output, which is what makes preview, diff, golden tests and
//! offline work possible.

pub mod dialplan;
pub mod diff;
pub mod pattern;
pub mod pbx;
pub mod redact;
pub mod snapshot;
pub mod sorcery;
pub mod trace;
pub mod validate;

pub use diff::{diff, touched, Diff, Touched};
pub use pbx::{render_pbx, Endpoint, Rendered};
pub use snapshot::Snapshot;
pub use trace::{trace_from, trace_inbound, Trace};
pub use validate::{Finding, Severity};
