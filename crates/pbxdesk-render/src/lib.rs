//! Rendering: pure functions from a model to the text Asterisk reads. No I/O, no clock: the
//! same input gives byte-identical output, which is what makes preview, diff, golden tests and
//! offline work possible.

pub mod dialplan;
