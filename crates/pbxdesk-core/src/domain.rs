//! Validated values. Each newtype has a private field and a `parse` that refuses what breaks
//! its rule, so a value of the type is known good everywhere else (it can reach a config line,
//! an AMI header or AstDB without further checks).

use crate::error::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

type Parsed<T> = Result<T, ValidationError>;

impl ValidationError {
    /// Re-labels an error with the name of the input field it came from.
    pub fn for_field(mut self, field: &str) -> Self {
        field.clone_into(&mut self.field);
        self
    }
}

fn no_controls(field: &str, s: &str) -> Parsed<()> {
    if s.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            s,
            "control characters (newlines, tabs, …) are not allowed",
        ));
    }
    Ok(())
}

/// A tenant's stable short name: lowercase ASCII letters, digits and '-', 2–24 characters,
/// starting with a letter. It names the tenant's Asterisk contexts, so it never changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slug(String);

impl Slug {
    pub const RULE: &'static str =
        "2 to 24 characters: lowercase letters a-z, digits and '-', starting with a letter, not ending with '-'";

    pub fn parse(s: &str) -> Parsed<Self> {
        let ok = (2..=24).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Slug(s.to_owned()))
        } else {
            Err(ValidationError::new("slug", s, Self::RULE))
        }
    }

    /// Derives a slug from a display name ("Acme Dental, Inc." -> "acme-dental-inc").
    pub fn from_name(name: &str) -> Parsed<Self> {
        let mut out = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            if out.len() >= 24 {
                break;
            }
        }
        let trimmed = out
            .trim_matches('-')
            .trim_start_matches(|c: char| c.is_ascii_digit());
        Self::parse(trimmed.trim_start_matches('-')).map_err(|_| {
            ValidationError::new(
                "name",
                name,
                "no slug can be derived from this name; give one with --slug",
            )
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An internal extension number: 2 to 6 digits, no leading zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Extension(u32);

impl Extension {
    pub const RULE: &'static str = "2 to 6 digits, not starting with 0";
    pub const MIN: u32 = 10;
    pub const MAX: u32 = 999_999;

    pub fn parse(s: &str) -> Parsed<Self> {
        let s = s.trim();
        let ok = (2..=6).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_digit())
            && !s.starts_with('0');
        match s.parse::<u32>() {
            Ok(n) if ok => Ok(Extension(n)),
            _ => Err(ValidationError::new("extension", s, Self::RULE)),
        }
    }

    pub fn from_number(n: i64) -> Parsed<Self> {
        Self::parse(&n.to_string())
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A tenant's extension range, both ends included, e.g. "1000-1999".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtRange {
    first: Extension,
    last: Extension,
}

impl ExtRange {
    pub const RULE: &'static str =
        "FIRST-LAST, two extensions of 2 to 6 digits with FIRST <= LAST (e.g. 1000-1999)";

    pub fn parse(s: &str) -> Parsed<Self> {
        let err = || ValidationError::new("ext_range", s, Self::RULE);
        let (a, b) = s.trim().split_once('-').ok_or_else(err)?;
        let first = Extension::parse(a).map_err(|_| err())?;
        let last = Extension::parse(b).map_err(|_| err())?;
        Self::new(first, last).map_err(|_| err())
    }

    pub fn new(first: Extension, last: Extension) -> Parsed<Self> {
        if first <= last {
            Ok(ExtRange { first, last })
        } else {
            Err(ValidationError::new(
                "ext_range",
                &format!("{first}-{last}"),
                Self::RULE,
            ))
        }
    }

    pub fn first(self) -> Extension {
        self.first
    }
    pub fn last(self) -> Extension {
        self.last
    }
    pub fn contains(self, e: Extension) -> bool {
        self.first <= e && e <= self.last
    }
    pub fn len(self) -> u32 {
        self.last.0 - self.first.0 + 1
    }
    pub fn is_empty(self) -> bool {
        false
    }
}

impl fmt::Display for ExtRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// A phone number in E.164: '+', a country code not starting with 0, 8 to 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct E164(String);

impl E164 {
    pub const RULE: &'static str =
        "an international number in E.164 form: '+' and 8 to 15 digits, e.g. +41445551234";

    pub fn parse(s: &str) -> Parsed<Self> {
        // Spaces, dashes, dots and parentheses are common in typed numbers: drop them.
        let compact: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(E164(compact))
        } else {
            Err(ValidationError::new("number", s, Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an inbound number goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DidDestination {
    /// Rings the user with this extension.
    User(Extension),
    /// Straight to the user's voicemail.
    Voicemail(Extension),
    /// To an outside number, through the tenant's outbound policy.
    External(E164),
    /// Answered with a "not in service" message.
    Hangup,
    /// Rings the tenant's ring group with this extension.
    RingGroup(Extension),
}

impl DidDestination {
    pub const RULE: &'static str =
        "user:EXT, voicemail:EXT, ring_group:EXT, external:+NUMBER or hangup";

    pub fn parse(s: &str) -> Parsed<Self> {
        let t = s.trim();
        let err = || ValidationError::new("destination", s, Self::RULE);
        if t == "hangup" {
            return Ok(DidDestination::Hangup);
        }
        let (kind, value) = t.split_once(':').ok_or_else(err)?;
        match kind {
            "user" => Extension::parse(value)
                .map(DidDestination::User)
                .map_err(|_| err()),
            "voicemail" => Extension::parse(value)
                .map(DidDestination::Voicemail)
                .map_err(|_| err()),
            "external" => E164::parse(value)
                .map(DidDestination::External)
                .map_err(|_| err()),
            "ring_group" => Extension::parse(value)
                .map(DidDestination::RingGroup)
                .map_err(|_| err()),
            _ => Err(err()),
        }
    }

    /// The extension a user or voicemail destination points at.
    pub fn extension(&self) -> Option<Extension> {
        match self {
            DidDestination::User(e) | DidDestination::Voicemail(e) => Some(*e),
            _ => None,
        }
    }
}

impl fmt::Display for DidDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DidDestination::User(e) => write!(f, "user:{e}"),
            DidDestination::Voicemail(e) => write!(f, "voicemail:{e}"),
            DidDestination::External(n) => write!(f, "external:{n}"),
            DidDestination::Hangup => f.write_str("hangup"),
            DidDestination::RingGroup(e) => write!(f, "ring_group:{e}"),
        }
    }
}

/// A country's dialing conventions, for turning numbers as people type them into E.164.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialingPlan {
    /// ISO 3166 alpha-2, e.g. "CH".
    pub country: &'static str,
    /// Country calling code without '+', e.g. "41".
    pub country_code: &'static str,
    /// Prefix of national numbers, e.g. "0" (empty in the NANP).
    pub trunk_prefix: &'static str,
    /// Prefix to dial abroad, e.g. "00" (or "011" in the NANP).
    pub international_prefix: &'static str,
    /// Digits of a national significant number, inclusive.
    pub national_digits: (usize, usize),
}

/// The plans pbxdesk knows; more are one line each.
pub const DIALING_PLANS: &[DialingPlan] = &[
    DialingPlan {
        country: "CH",
        country_code: "41",
        trunk_prefix: "0",
        international_prefix: "00",
        national_digits: (9, 9),
    },
    DialingPlan {
        country: "DE",
        country_code: "49",
        trunk_prefix: "0",
        international_prefix: "00",
        national_digits: (6, 13),
    },
    DialingPlan {
        country: "AT",
        country_code: "43",
        trunk_prefix: "0",
        international_prefix: "00",
        national_digits: (4, 13),
    },
    DialingPlan {
        country: "FR",
        country_code: "33",
        trunk_prefix: "0",
        international_prefix: "00",
        national_digits: (9, 9),
    },
    DialingPlan {
        country: "GB",
        country_code: "44",
        trunk_prefix: "0",
        international_prefix: "00",
        national_digits: (9, 10),
    },
    DialingPlan {
        country: "NL",
        country_code: "31",
        trunk_prefix: "0",
        international_prefix: "00",
        national_digits: (9, 9),
    },
    DialingPlan {
        country: "US",
        country_code: "1",
        trunk_prefix: "1",
        international_prefix: "011",
        national_digits: (10, 10),
    },
    DialingPlan {
        country: "CA",
        country_code: "1",
        trunk_prefix: "1",
        international_prefix: "011",
        national_digits: (10, 10),
    },
];

impl DialingPlan {
    pub fn for_country(iso: &str) -> Parsed<&'static DialingPlan> {
        let up = iso.trim().to_ascii_uppercase();
        DIALING_PLANS
            .iter()
            .find(|p| p.country == up)
            .ok_or_else(|| {
                let known: Vec<&str> = DIALING_PLANS.iter().map(|p| p.country).collect();
                ValidationError::new("country", iso, format!("one of: {}", known.join(", ")))
            })
    }
}

impl E164 {
    /// Reads a number in any common form for the given country: "+41 44 555 12 34",
    /// "0041 44 555 12 34", "044 555 12 34", "+41 (0)44 555 12 34", "(212) 555-1234" (US).
    /// A number that could be read more than one way, or fits no form, is refused with the
    /// reason.
    pub fn normalize(input: &str, plan: &DialingPlan) -> Parsed<Self> {
        let t = input.trim();
        no_controls("number", t)?;
        if t.chars()
            .any(|c| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')' | '/')))
        {
            return Err(ValidationError::new(
                "number",
                input,
                "only digits, '+', spaces, '-', '.', '/' and parentheses",
            ));
        }
        // "+41 (0)44 …": the trunk prefix in parentheses is not dialled from abroad.
        let without_zero = t.replacen("(0)", "", 1);
        let plus = without_zero.trim_start().starts_with('+');
        let digits: String = without_zero.chars().filter(char::is_ascii_digit).collect();
        let candidate = if plus {
            format!("+{digits}")
        } else if let Some(rest) = digits.strip_prefix(plan.international_prefix) {
            format!("+{rest}")
        } else {
            let national = if plan.trunk_prefix.is_empty() {
                digits.as_str()
            } else if let Some(rest) = digits.strip_prefix(plan.trunk_prefix) {
                rest
            } else if plan.country_code == "1" && digits.len() == 10 {
                // NANP numbers are usually written without the 1.
                digits.as_str()
            } else {
                return Err(ValidationError::new(
                    "number",
                    input,
                    format!(
                        "ambiguous: no '+', international prefix {} or trunk prefix {} for {}; write it as +{}…",
                        plan.international_prefix, plan.trunk_prefix, plan.country, plan.country_code
                    ),
                ));
            };
            let (lo, hi) = plan.national_digits;
            if !(lo..=hi).contains(&national.len()) {
                return Err(ValidationError::new(
                    "number",
                    input,
                    format!(
                        "a national number in {} has {lo} to {hi} digits after the prefix",
                        plan.country
                    ),
                ));
            }
            format!("+{}{national}", plan.country_code)
        };
        E164::parse(&candidate).map_err(|e| ValidationError::new("number", input, e.rule))
    }
}

/// A PJSIP endpoint id / SIP auth username: 3 to 40 of a-z, 0-9, '.', '_', '-', starting with a
/// letter or digit. Kept lowercase so two ids never differ only by case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SipUsername(String);

impl SipUsername {
    pub const RULE: &'static str =
        "3 to 40 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit";

    pub fn parse(s: &str) -> Parsed<Self> {
        let ok = (3..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if ok {
            Ok(SipUsername(s.to_owned()))
        } else {
            Err(ValidationError::new("sip_username", s, Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SipUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address (RFC 5322 addr-spec, checked by the email_address crate), at most 254
/// characters, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub const RULE: &'static str =
        "an e-mail address like name@example.com (at most 254 characters)";

    pub fn parse(s: &str) -> Parsed<Self> {
        let t = s.trim();
        let err = || ValidationError::new("email", s, Self::RULE);
        no_controls("email", t)?;
        // The crate accepts quoted local parts and IP-literal domains; a phone system's users
        // need neither, and both carry characters that do not belong in config files.
        let plain = t
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | '+' | '\''));
        if t.len() > 254 || !plain || !t.contains('.') {
            return Err(err());
        }
        email_address::EmailAddress::parse_with_options(t, email_address::Options::default())
            .map_err(|_| err())?;
        Ok(Email(t.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's or a thing's display name: 1 to 80 characters after trimming, any script,
/// no control characters. Rendering encodes it further where it reaches Asterisk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DisplayName(String);

impl DisplayName {
    pub const RULE: &'static str = "1 to 80 characters, no control characters";

    pub fn parse(field: &str, s: &str) -> Parsed<Self> {
        let t = s.trim();
        no_controls(field, t)?;
        let n = t.chars().count();
        if n == 0 || n > 80 {
            return Err(ValidationError::new(field, s, Self::RULE));
        }
        Ok(DisplayName(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A PBX's name in the workspace: 1 to 40 of letters, digits, '.', '_', '-'.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PbxName(String);

impl PbxName {
    pub const RULE: &'static str = "1 to 40 characters: letters, digits, '.', '_' or '-'";

    pub fn parse(s: &str) -> Parsed<Self> {
        let ok = (1..=40).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(PbxName(s.to_owned()))
        } else {
            Err(ValidationError::new("name", s, Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A name made of a-z, 0-9 and '-', starting with a letter, not ending with '-': it becomes
/// part of Asterisk context and endpoint names, so it never holds anything else.
fn short_name(field: &str, s: &str, max: usize) -> Parsed<String> {
    let ok = (1..=max).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ValidationError::new(
            field,
            s,
            format!("1 to {max} characters: lowercase letters a-z, digits and '-', starting with a letter, not ending with '-'"),
        ))
    }
}

/// A trunk's name, unique on its PBX; names the endpoint `pbxdesk-trunk-NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TrunkName(String);

impl TrunkName {
    pub fn parse(s: &str) -> Parsed<Self> {
        short_name("name", s.trim(), 24).map(TrunkName)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrunkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An outbound policy's name, unique in its tenant; names the context `SLUG_cos_NAME`
/// (which must fit ps_endpoints.context, 40 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PolicyName(String);

impl PolicyName {
    pub fn parse(s: &str) -> Parsed<Self> {
        short_name("policy", s.trim(), 11).map(PolicyName)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Digits an outbound rule puts in front of the number: '+' first if at all, then digits,
/// '*' or '#'; at most 20.
pub fn parse_prepend(s: &str) -> Parsed<String> {
    let t = s.trim();
    let body = t.strip_prefix('+').unwrap_or(t);
    if t.len() <= 20
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
    {
        Ok(t.to_owned())
    } else {
        Err(ValidationError::new(
            "prepend",
            s,
            "at most 20 characters: an optional leading '+', then digits, '*' or '#'",
        ))
    }
}

/// A host name or IP address (v4 or v6), as it will be given to SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host(String);

impl Host {
    pub const RULE: &'static str =
        "a host name (letters, digits, '-', '.') or an IPv4/IPv6 address, at most 253 characters";

    pub fn parse(s: &str) -> Parsed<Self> {
        let t = s.trim();
        if t.parse::<std::net::IpAddr>().is_ok() {
            return Ok(Host(t.to_owned()));
        }
        let ok = (1..=253).contains(&t.len())
            && t.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if ok {
            Ok(Host(t.to_ascii_lowercase()))
        } else {
            Err(ValidationError::new("host", s, Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A login name on a remote host or in the workspace: 1 to 32 of a-z, 0-9, '_', '-', '.'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginName(String);

impl LoginName {
    pub const RULE: &'static str =
        "1 to 32 characters: lowercase letters, digits, '_', '-' or '.', starting with a letter or '_'";

    pub fn parse(field: &str, s: &str) -> Parsed<Self> {
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
            });
        if ok {
            Ok(LoginName(s.to_owned()))
        } else {
            Err(ValidationError::new(field, s, Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A voicemail PIN: 4 to 10 digits. Never echoed back in an error.
#[derive(Clone, PartialEq, Eq)]
pub struct VoicemailPin(String);

impl VoicemailPin {
    pub const RULE: &'static str = "4 to 10 digits";

    pub fn parse(s: &str) -> Parsed<Self> {
        if (4..=10).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(VoicemailPin(s.to_owned()))
        } else {
            Err(ValidationError::secret("voicemail_pin", Self::RULE))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VoicemailPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VoicemailPin(***)")
    }
}

/// Where a user's calls are forwarded: another extension of the tenant, or an E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardTarget {
    Extension(Extension),
    External(E164),
}

impl ForwardTarget {
    pub const RULE: &'static str =
        "an extension (2 to 6 digits) or an E.164 number like +41445551234";

    /// `field` names the forward in an error (`forward_always`, `forward_busy`, …).
    pub fn parse(field: &str, s: &str) -> Parsed<Self> {
        let t = s.trim();
        if t.starts_with('+') {
            E164::parse(t)
                .map(ForwardTarget::External)
                .map_err(|_| ValidationError::new(field, s, Self::RULE))
        } else {
            Extension::parse(t)
                .map(ForwardTarget::Extension)
                .map_err(|_| ValidationError::new(field, s, Self::RULE))
        }
    }
}

impl fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardTarget::Extension(e) => e.fmt(f),
            ForwardTarget::External(n) => n.fmt(f),
        }
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $field:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "specta", derive(specta::Type))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Parsed<Self> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ValidationError::new(
                        $field,
                        s,
                        format!("one of: {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What an operator of pbxdesk may do (see service::access).
    Role, "role" {
        MspAdmin = "msp_admin",
        Technician = "technician",
        TenantAdmin = "tenant_admin",
        Auditor = "auditor",
    }
);

string_enum!(
    /// A phone user's role inside the tenant's organisation.
    UserRole, "role" { Member = "member", Admin = "admin" }
);

string_enum!(UserStatus, "status" { Active = "active", Suspended = "suspended", Deleted = "deleted" });

string_enum!(TenantStatus, "status" { Active = "active", Suspended = "suspended" });

string_enum!(
    /// How a ring group rings its members: all at once, one after another in the order given,
    /// or one after another starting one further each call.
    RingStrategy, "strategy" { All = "all", InOrder = "in_order", RoundRobin = "round_robin" }
);

string_enum!(Transport, "transport" { Udp = "udp", Tcp = "tcp", Tls = "tls" });

string_enum!(
    /// How pbxdesk logs in over SSH.
    SshAuth, "ssh_auth" { Key = "key", Agent = "agent", Password = "password" }
);

string_enum!(
    /// How AMI or the realtime database is reached: through the SSH connection (to the PBX's
    /// own 127.0.0.1, so neither is exposed on the network) or directly.
    Via, "via" { Tunnel = "tunnel", Direct = "direct" }
);

/// An absolute path on the PBX: letters, digits, '.', '_', '-', '/', no "..". Such a path can
/// reach SFTP or a remote command without quoting surprises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemotePath(String);

impl RemotePath {
    pub const RULE: &'static str =
        "an absolute path of letters, digits, '.', '_', '-' and '/', without '..'";

    pub fn parse(field: &str, s: &str) -> Parsed<Self> {
        let t = s.trim();
        let ok = t.starts_with('/')
            && t.len() <= 1024
            && !t.split('/').any(|c| c == "..")
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
        if ok {
            Ok(RemotePath(t.trim_end_matches('/').to_owned()).normalized())
        } else {
            Err(ValidationError::new(field, s, Self::RULE))
        }
    }

    fn normalized(self) -> Self {
        if self.0.is_empty() {
            RemotePath("/".into())
        } else {
            self
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A name for AMI users, database names and users: 1 to 64 of letters, digits, '_', '-', '.'.
pub fn parse_account(field: &str, s: &str) -> Parsed<String> {
    let t = s.trim();
    let ok = (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(t.to_owned())
    } else {
        Err(ValidationError::new(
            field,
            s,
            "1 to 64 characters: letters, digits, '_', '-' or '.'",
        ))
    }
}

/// A secret typed by the technician (AMI secret, database or SSH password): 1 to 256
/// characters without control characters, since it travels in protocol headers. Never echoed.
pub fn parse_secret(field: &str, s: &str) -> Parsed<String> {
    if s.is_empty() || s.chars().count() > 256 || s.chars().any(char::is_control) {
        return Err(ValidationError::secret(
            field,
            "1 to 256 characters, no control characters",
        ));
    }
    Ok(s.to_owned())
}

/// An OpenSSH host key fingerprint: "SHA256:" and 43 base64 characters.
pub fn parse_fingerprint(s: &str) -> Parsed<String> {
    let t = s.trim();
    let ok = t.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    });
    if ok {
        Ok(t.to_owned())
    } else {
        Err(ValidationError::new(
            "fingerprint",
            s,
            "SHA256: followed by 43 base64 characters, as ssh-keygen -lf prints it",
        ))
    }
}

string_enum!(
    /// Codecs a device may offer; names as Asterisk's `allow=` knows them.
    Codec, "codecs" {
        Opus = "opus",
        G722 = "g722",
        Ulaw = "ulaw",
        Alaw = "alaw",
        G729 = "g729",
    }
);

/// A codec list in preference order, no duplicates, at least one: "opus,g722,ulaw".
pub fn parse_codecs(s: &str) -> Parsed<Vec<Codec>> {
    let mut out: Vec<Codec> = Vec::new();
    for part in s.split(',') {
        let c = Codec::parse(part).map_err(|e| ValidationError::new("codecs", s, e.rule))?;
        if out.contains(&c) {
            return Err(ValidationError::new("codecs", s, "a codec is listed twice"));
        }
        out.push(c);
    }
    Ok(out)
}

pub fn codecs_to_string(codecs: &[Codec]) -> String {
    codecs
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A point in time as typed: a day (`2026-12-03`, its first moment in UTC) or an RFC 3339
/// time (`2026-12-03T14:30:00Z`, `…+01:00`), as Unix milliseconds.
pub fn parse_time(field: &str, s: &str) -> Parsed<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = s.trim();
    let err = || {
        ValidationError::new(
            field,
            s,
            "a day like 2026-12-03 or a time like 2026-12-03T14:30:00Z",
        )
    };
    if let Ok(at) = time::OffsetDateTime::parse(t, &Rfc3339) {
        return i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| err());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(t, &fmt).map_err(|_| err())?;
    Ok(day.midnight().assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_typed() {
        assert_eq!(
            parse_time("since", "2026-12-03").unwrap(),
            1_796_256_000_000
        );
        assert_eq!(
            parse_time("since", "2026-12-03T01:00:00+01:00").unwrap(),
            1_796_256_000_000
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-12-03 14:00",
            "1796256000000",
        ] {
            assert_eq!(
                parse_time("since", bad).unwrap_err().field,
                "since",
                "{bad}"
            );
        }
    }

    #[test]
    fn slug_rules() {
        assert!(Slug::parse("acme").is_ok());
        assert!(Slug::parse("acme-2").is_ok());
        for bad in [
            "a",
            "Acme",
            "1acme",
            "acme-",
            "ac me",
            "acme;",
            "a${x}",
            "ä-b",
            &"a".repeat(25),
        ] {
            let e = Slug::parse(bad).unwrap_err();
            assert_eq!(e.field, "slug");
        }
        assert_eq!(
            Slug::from_name("Acme Dental, Inc.").unwrap().as_str(),
            "acme-dental-inc"
        );
        assert_eq!(
            Slug::from_name("  Zürich  Büro ").unwrap().as_str(),
            "z-rich-b-ro"
        );
        assert!(Slug::from_name(";;;").is_err());
    }

    #[test]
    fn extension_and_range_rules() {
        assert_eq!(Extension::parse("1000").unwrap().get(), 1000);
        for bad in ["0100", "1", "1234567", "12a", "", "-5", "１２３"] {
            assert!(Extension::parse(bad).is_err(), "{bad}");
        }
        let r = ExtRange::parse("1000-1999").unwrap();
        assert_eq!(r.len(), 1000);
        assert!(r.contains(Extension::parse("1999").unwrap()));
        assert!(!r.contains(Extension::parse("2000").unwrap()));
        for bad in ["1999-1000", "1000", "10-x", "1000-1999-2000", "0-9"] {
            let e = ExtRange::parse(bad).unwrap_err();
            assert_eq!(e.field, "ext_range", "{bad}");
        }
    }

    #[test]
    fn e164_rules() {
        assert_eq!(
            E164::parse("+41 44 555 12 34").unwrap().as_str(),
            "+41445551234"
        );
        for bad in [
            "0445551234",
            "+0445551234",
            "+1234",
            "+1234567890123456",
            "+4144;555",
            "+41\n445551234",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn national_and_international_forms_normalize() {
        let ch = DialingPlan::for_country("ch").unwrap();
        for (input, want) in [
            ("+41 44 555 12 34", "+41445551234"),
            ("0041 44 555 12 34", "+41445551234"),
            ("044 555 12 34", "+41445551234"),
            ("044/555.12.34", "+41445551234"),
            ("+41 (0)44 555 12 34", "+41445551234"),
            ("0049 30 1234567", "+49301234567"),
        ] {
            assert_eq!(
                E164::normalize(input, ch).unwrap().as_str(),
                want,
                "{input}"
            );
        }
        let us = DialingPlan::for_country("US").unwrap();
        for (input, want) in [
            ("(212) 555-1234", "+12125551234"),
            ("1 212 555 1234", "+12125551234"),
            ("011 41 44 555 12 34", "+41445551234"),
        ] {
            assert_eq!(
                E164::normalize(input, us).unwrap().as_str(),
                want,
                "{input}"
            );
        }
        for bad in [
            "445551234",
            "044 555 12",
            "044 555 12 34 5",
            "+41 44 555 12 34;x",
            "${SHELL(id)}",
            "044\n5551234",
            "",
        ] {
            let e = E164::normalize(bad, ch).unwrap_err();
            assert_eq!(e.field, "number", "{bad}");
        }
        let e = E164::normalize("445551234", ch).unwrap_err();
        assert!(e.rule.contains("ambiguous"), "{e}");
        assert!(DialingPlan::for_country("XX").is_err());
    }

    #[test]
    fn email_rules() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "ann",
            "ann@",
            "ann@example",
            "a\nb@example.com",
            "\"a;b\"@example.com",
            "a@[127.0.0.1]",
            "${x}@a.com",
        ] {
            let e = Email::parse(bad).unwrap_err();
            assert_eq!(e.field, "email", "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn display_name_rules() {
        assert_eq!(
            DisplayName::parse("name", "  Zoë O'Brien ")
                .unwrap()
                .as_str(),
            "Zoë O'Brien"
        );
        assert!(DisplayName::parse("name", "日本語の名前").is_ok());
        assert!(DisplayName::parse("name", "").is_err());
        assert!(DisplayName::parse("name", "a\rb").is_err());
        assert!(DisplayName::parse("name", &"x".repeat(81)).is_err());
        let e = DisplayName::parse("name", "a\nb").unwrap_err();
        assert_eq!(
            e.value, "a\\nb",
            "control characters are escaped in the message"
        );
    }

    #[test]
    fn sip_username_host_and_pin_rules() {
        assert!(SipUsername::parse("acme-1000").is_ok());
        for bad in ["ab", "Acme", "-abc", "a b c", "abc;", &"a".repeat(41)] {
            assert!(SipUsername::parse(bad).is_err(), "{bad}");
        }
        assert!(Host::parse("pbx.example.com").is_ok());
        assert!(Host::parse("10.0.0.1").is_ok());
        assert!(Host::parse("::1").is_ok());
        for bad in ["", "a b", "-a.com", "a;rm -rf", "$(id)"] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
        assert!(VoicemailPin::parse("1234").is_ok());
        let e = VoicemailPin::parse("12x4").unwrap_err();
        assert!(e.value.is_empty(), "a PIN is never echoed");
    }

    #[test]
    fn codecs_and_enums() {
        assert_eq!(
            parse_codecs("opus,ulaw").unwrap(),
            vec![Codec::Opus, Codec::Ulaw]
        );
        assert!(parse_codecs("opus,opus").is_err());
        assert!(parse_codecs("speex").is_err());
        assert!(parse_codecs("").is_err());
        assert_eq!(Role::parse("auditor").unwrap(), Role::Auditor);
        let e = Role::parse("root").unwrap_err();
        assert!(e.rule.contains("msp_admin"));
        assert!(ForwardTarget::parse("forward_always", "+41445551234").is_ok());
        assert!(ForwardTarget::parse("forward_always", "1001").is_ok());
        assert!(ForwardTarget::parse("forward_always", "1001;x").is_err());
    }

    #[test]
    fn printable_cuts_and_escapes() {
        let long = "é".repeat(100);
        let p = crate::error::printable(&long);
        assert_eq!(p.chars().count(), 65);
        assert_eq!(crate::error::printable("a\u{1b}[31m"), "a\\u{1b}[31m");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const DANGEROUS: &[char] = &[
            ';', '\n', '\r', '$', '[', ']', '(', ')', ',', '&', '"', '\\', '\0',
        ];

        proptest! {
            /// No input makes a parser panic, and nothing accepted by the strict identifiers
            /// carries a character Asterisk config or AMI would read as syntax.
            #[test]
            fn parsers_never_panic_and_identifiers_stay_clean(s in any::<String>()) {
                let _ = DisplayName::parse("name", &s);
                let _ = ForwardTarget::parse("forward_always", &s);
                let _ = ExtRange::parse(&s);
                for ok in [
                    Slug::parse(&s).map(|v| v.0),
                    SipUsername::parse(&s).map(|v| v.0),
                    E164::parse(&s).map(|v| v.0),
                    Email::parse(&s).map(|v| v.0),
                    Host::parse(&s).map(|v| v.0),
                    Extension::parse(&s).map(|v| v.to_string()),
                ].into_iter().flatten() {
                    prop_assert!(!ok.chars().any(|c| DANGEROUS.contains(&c) || c.is_control()), "{ok:?}");
                }
            }

            #[test]
            fn display_names_never_hold_line_breaks(s in "[a-zA-Z ;$\\[\\]{}()\r\n\t\u{0}-\u{1f}é日]{0,120}") {
                if let Ok(n) = DisplayName::parse("name", &s) {
                    prop_assert!(!n.as_str().contains(['\n', '\r', '\0']));
                    prop_assert!(n.as_str().chars().count() <= 80);
                }
            }

            #[test]
            fn errors_are_one_printable_line(s in any::<String>()) {
                if let Err(e) = Email::parse(&s) {
                    let msg = e.to_string();
                    prop_assert!(!msg.contains('\n') && !msg.contains('\r'));
                }
            }
        }
    }
}
