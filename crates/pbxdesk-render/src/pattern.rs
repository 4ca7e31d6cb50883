//! Asterisk dial patterns (`_0[1-9]X.`), as one type for validation, matching (trace) and
//! shadowing (validation): the same reading of a pattern everywhere.
//!
//! Supported syntax, as Asterisk reads it after the leading `_`: `X` (0-9), `Z` (1-9), `N`
//! (2-9), `[...]` (a set of digits with ranges `1-5`), `.` (one or more of anything) and `!`
//! (zero or more) at the end only, and the literal digits, `*`, `#` and `+`. A pattern
//! without `_` is a literal number.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A set of the dialable characters: bits 0-9 digits, 10 `*`, 11 `#`, 12 `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Set(u16);

const ANY: Set = Set(0x1fff);

fn bit(c: u8) -> Option<u16> {
    match c {
        b'0'..=b'9' => Some(1 << (c - b'0')),
        b'*' => Some(1 << 10),
        b'#' => Some(1 << 11),
        b'+' => Some(1 << 12),
        _ => None,
    }
}

impl Set {
    fn digits(lo: u8, hi: u8) -> Set {
        Set((lo..=hi).fold(0, |acc, d| acc | (1 << d)))
    }

    fn contains(self, c: u8) -> bool {
        bit(c).is_some_and(|b| self.0 & b != 0)
    }

    fn is_subset_of(self, other: Set) -> bool {
        self.0 & !other.0 == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    None,
    OneOrMore,
    ZeroOrMore,
}

/// A validated dial pattern.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern {
    text: String,
    #[serde(skip)]
    sets: Vec<Set>,
    #[serde(skip)]
    tail: TailSer,
}

// Serde needs Default for skipped fields; wrap Tail to keep it private.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TailSer(Tail);
impl Default for TailSer {
    fn default() -> Self {
        TailSer(Tail::None)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({})", self.text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.text
    }
}

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Pattern::parse(&s)
    }
}

impl Pattern {
    pub const RULE: &'static str = "a number (digits, *, #, +) or a pattern starting with '_': X, Z, N, [1-5], digits, and '.' or '!' at the end; at most 40 characters";

    /// Reads a pattern; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        if s.is_empty() || s.len() > 40 {
            return Err("1 to 40 characters".into());
        }
        let Some(body) = s.strip_prefix('_') else {
            let mut sets = Vec::new();
            for c in s.bytes() {
                let b = bit(c)
                    .ok_or_else(|| format!("{:?} is not dialable (digits, *, #, +)", c as char))?;
                sets.push(Set(b));
            }
            return Ok(Pattern {
                text: s.to_owned(),
                sets,
                tail: TailSer(Tail::None),
            });
        };
        let bytes = body.as_bytes();
        let mut sets = Vec::new();
        let mut tail = Tail::None;
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if tail != Tail::None {
                return Err("'.' and '!' may only end a pattern".into());
            }
            match c {
                b'X' | b'x' => sets.push(Set::digits(0, 9)),
                b'Z' | b'z' => sets.push(Set::digits(1, 9)),
                b'N' | b'n' => sets.push(Set::digits(2, 9)),
                b'.' => tail = Tail::OneOrMore,
                b'!' => tail = Tail::ZeroOrMore,
                b'[' => {
                    let end = body[i..]
                        .find(']')
                        .map(|e| i + e)
                        .ok_or("'[' without ']'")?;
                    let inner = &bytes[i + 1..end];
                    if inner.is_empty() {
                        return Err("an empty set '[]'".into());
                    }
                    let mut set = 0u16;
                    let mut k = 0;
                    while k < inner.len() {
                        let a = inner[k];
                        if k + 2 < inner.len() && inner[k + 1] == b'-' {
                            let b = inner[k + 2];
                            if !(a.is_ascii_digit() && b.is_ascii_digit() && a <= b) {
                                return Err(format!(
                                    "range {}-{} must be digits, low to high",
                                    a as char, b as char
                                ));
                            }
                            set |= Set::digits(a - b'0', b - b'0').0;
                            k += 3;
                        } else {
                            set |= bit(a)
                                .ok_or_else(|| format!("{:?} cannot be in a set", a as char))?;
                            k += 1;
                        }
                    }
                    sets.push(Set(set));
                    i = end;
                }
                _ => sets.push(Set(bit(c).ok_or_else(|| {
                    format!(
                        "{:?} is not pattern syntax (X Z N [..] . ! digits * # +)",
                        c as char
                    )
                })?)),
            }
            i += 1;
        }
        if sets.is_empty() {
            return Err("a pattern needs at least one position before '.' or '!'".into());
        }
        Ok(Pattern {
            text: s.to_owned(),
            sets,
            tail: TailSer(tail),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a dialled string matches, as Asterisk would match it. A phone can dial any
    /// character (a SIP URI's user part holds `,`, `&`, letters…): `.` and `!` match them all,
    /// which is why the dialplan filters what it passes on.
    pub fn matches(&self, number: &str) -> bool {
        let b = number.as_bytes();
        let n = self.sets.len();
        let len_ok = match self.tail.0 {
            Tail::None => b.len() == n,
            Tail::OneOrMore => b.len() > n,
            Tail::ZeroOrMore => b.len() >= n,
        };
        len_ok && self.sets.iter().zip(b).all(|(s, &c)| s.contains(c))
    }

    fn set_at(&self, p: usize) -> Set {
        self.sets.get(p).copied().unwrap_or(ANY)
    }

    fn min_len(&self) -> usize {
        self.sets.len() + usize::from(self.tail.0 == Tail::OneOrMore)
    }

    /// Whether every number `other` matches is also matched by `self` (so `other`, placed
    /// after `self`, can never be reached).
    pub fn covers(&self, other: &Pattern) -> bool {
        match (self.tail.0, other.tail.0) {
            (Tail::None, Tail::None) => {
                self.sets.len() == other.sets.len()
                    && other
                        .sets
                        .iter()
                        .zip(&self.sets)
                        .all(|(o, s)| o.is_subset_of(*s))
            }
            (Tail::None, _) => false,
            (_, Tail::None) => {
                other.sets.len() >= self.min_len()
                    && (0..other.sets.len()).all(|p| other.set_at(p).is_subset_of(self.set_at(p)))
            }
            (_, _) => {
                other.min_len() >= self.min_len()
                    && (0..=self.sets.len().max(other.sets.len()))
                        .all(|p| other.set_at(p).is_subset_of(self.set_at(p)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn matching_follows_asterisk() {
        assert!(p("_0[1-9]X.").matches("0445551234"));
        assert!(!p("_0[1-9]X.").matches("00"));
        assert!(!p("_0[1-9]X.").matches("012"), "'.' needs one more");
        assert!(p("_0[1-9]X!").matches("012"));
        assert!(p("112").matches("112"));
        assert!(!p("112").matches("1120"));
        assert!(p("_NXXNXXXXXX").matches("2125551234"));
        assert!(!p("_NXXNXXXXXX").matches("1125551234"));
        assert!(p("_+X.").matches("+41445551234"));
        assert!(p("_00X.").matches("0049301234"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in [
            "",
            "_",
            "_1.2",
            "_[",
            "_[]",
            "_[9-1]",
            "_1a",
            "12a",
            "_X;",
            &"1".repeat(41),
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shadowing() {
        assert!(p("_0X.").covers(&p("_00X.")));
        assert!(p("_0X.").covers(&p("0445551234")));
        assert!(p("_X.").covers(&p("_0[1-9]X.")));
        assert!(!p("_00X.").covers(&p("_0X.")));
        assert!(!p("_0X.").covers(&p("_0X!")), "'!' also matches 0 alone");
        assert!(p("_0X!").covers(&p("_0X.")));
        assert!(!p("_0XX").covers(&p("_0X.")));
        assert!(p("_[0-2]").covers(&p("1")));
        assert!(!p("_[0-2]").covers(&p("3")));
    }

    #[test]
    fn serde_round_trip_keeps_meaning() {
        let s = serde_json::to_string(&p("_0X.")).unwrap();
        let back: Pattern = serde_json::from_str(&s).unwrap();
        assert!(back.matches("012"));
        assert!(serde_json::from_str::<Pattern>("\"_X;\"").is_err());
    }
}
