//! A typed model of extensions.conf and its one renderer.
//!
//! Nothing of a person's (names, labels, caller IDs) is written into the dialplan as it is:
//! `Arg::Text` is emitted as `${BASE64_DECODE(…)}` (func_base64, loaded by `autoload = yes`).
//! The base64 alphabet holds none of the characters the dialplan parser or the variable
//! substituter treat as syntax (`;` comments, `,` and `)` end arguments, `${`/`$[` are
//! evaluated, CR/LF end the line), and a function's result is not substituted again, so such
//! text can neither break out of its argument nor be evaluated. Everything else (`Arg::Raw`,
//! context names, patterns, applications) is pbxdesk's own and is checked against a strict
//! alphabet when it is built: what cannot be written safely is refused, never escaped.

use base64::Engine;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot render {what} {value:?}: {rule}")]
pub struct RenderError {
    pub what: &'static str,
    pub value: String,
    pub rule: &'static str,
}

fn refuse(what: &'static str, value: &str, rule: &'static str) -> RenderError {
    RenderError {
        what,
        value: value.chars().take(80).collect(),
        rule,
    }
}

/// A context name: 1 to 79 of a-z, 0-9, '-', '_'.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContextName(String);

impl ContextName {
    pub fn new(s: &str) -> Result<Self, RenderError> {
        let ok = (1..=79).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(ContextName(s.to_owned()))
        } else {
            Err(refuse("context", s, "1 to 79 of a-z, 0-9, '-', '_'"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An extension: digits, a special one (s, i, t, h), or a pattern starting with '_'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtPattern(String);

impl ExtPattern {
    pub fn new(s: &str) -> Result<Self, RenderError> {
        let special = matches!(s, "s" | "i" | "t" | "h");
        let digits = (1..=20).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#' || b == b'+');
        let pattern = s.strip_prefix('_').is_some_and(|p| {
            (1..=40).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || b"XZNxzn.!*#+[]-".contains(&b))
        });
        if special || digits || pattern {
            Ok(ExtPattern(s.to_owned()))
        } else {
            Err(refuse(
                "extension",
                s,
                "digits, s/i/t/h, or a pattern like _1XXX",
            ))
        }
    }
}

/// One piece of an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// pbxdesk's own token.
    Raw(String),
    /// A person's text, carried as base64 and decoded by Asterisk at call time.
    Text(String),
}

/// An application argument: pbxdesk's own tokens and a person's text, concatenated, e.g.
/// `CALLERID(name)=` followed by a user's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg(Vec<Part>);

impl Arg {
    /// pbxdesk's own token: letters, digits, `_-.:/@+*#&=<>!{}$%`, balanced parentheses and
    /// commas inside them, no spaces.
    pub fn raw(s: &str) -> Result<Arg, RenderError> {
        Ok(Arg(vec![Part::Raw(checked_raw(s)?)]))
    }

    /// pbxdesk's own constant expression (`$["${X}" = "1"]?label`): any text but CR, LF and
    /// `;`. Only a `&'static str` is accepted, so nothing read at run time can get here.
    pub fn own(s: &'static str) -> Arg {
        debug_assert!(!s.contains(['\r', '\n', ';']), "{s:?}");
        Arg(vec![Part::Raw(s.replace(['\r', '\n', ';'], ""))])
    }

    /// Appends pbxdesk's own token.
    pub fn then_raw(mut self, s: &str) -> Result<Arg, RenderError> {
        self.0.push(Part::Raw(checked_raw(s)?));
        Ok(self)
    }

    /// A person's text.
    pub fn text(s: &str) -> Arg {
        Arg(vec![Part::Text(s.to_owned())])
    }

    /// Appends a person's text to this argument.
    pub fn then_text(mut self, s: &str) -> Arg {
        self.0.push(Part::Text(s.to_owned()));
        self
    }

    fn write(&self, out: &mut String) {
        for part in &self.0 {
            match part {
                Part::Raw(s) => out.push_str(s),
                Part::Text(s) if s.is_empty() => {}
                Part::Text(s) => {
                    let _ = write!(
                        out,
                        "${{BASE64_DECODE({})}}",
                        base64::engine::general_purpose::STANDARD.encode(s)
                    );
                }
            }
        }
    }
}

/// The characters a dialled number may carry into an application argument.
pub const DIALLED: &str = "0123456789*#+";

/// What a caller controls, as it appears in the dialplan: the dialled string (`${EXTEN}` and
/// its substrings), caller and connected-line IDs, SIP headers, and AstDB values (a phone sets
/// them through feature codes). Asterisk substitutes variables first and splits arguments on
/// `,` afterwards (and Dial splits targets on `&`), so each of these must pass through
/// `FILTER()` before it reaches an argument.
const CALLER_DATA: [&str; 7] = [
    "${EXTEN",
    "${CALLERID(",
    "${CONNECTEDLINE(",
    "${REDIRECTING(",
    "${PJSIP_HEADER(",
    "${SIP_HEADER(",
    "${DB(",
];

/// `${FILTER(allowed,expr)}`: caller-controlled `expr` reduced to `allowed`, which must hold
/// none of `,` `(` `)` `$` `{` `}` (and never `&`).
pub fn filtered(allowed: &str, expr: &str) -> String {
    format!("${{FILTER({allowed},{expr})}}")
}

/// The first piece of caller-controlled data in `s` that is not the direct argument of a
/// `FILTER()` whose allowed characters cannot split an argument or a dial string.
pub fn unfiltered_caller_data(s: &str) -> Option<String> {
    // Every token starts with `${`: one scan for those, then a prefix compare (the render
    // checks every argument; a substring search per token was a sixth of its time).
    for (i, _) in s.match_indices("${") {
        let rest = &s[i..];
        if !CALLER_DATA.iter().any(|tok| rest.starts_with(tok)) {
            continue;
        }
        let before = &s[..i];
        let ok = before.rfind("${FILTER(").is_some_and(|j| {
            let allowed = &before[j + "${FILTER(".len()..];
            allowed
                .strip_suffix(',')
                .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| !b",(){}$&\\ ".contains(&b)))
        });
        if !ok {
            return Some(rest.chars().take(60).collect());
        }
    }
    None
}

fn checked_raw(s: &str) -> Result<String, RenderError> {
    let rule = "pbxdesk's own tokens only (a person's text goes in Arg::text)";
    if unfiltered_caller_data(s).is_some() {
        return Err(refuse(
            "argument",
            s,
            "caller-controlled data (EXTEN, CALLERID, headers, AstDB) only through FILTER()",
        ));
    }
    let alphabet = s.len() <= 512
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/@+*#&=<>!{}$%(),".contains(&b));
    let mut depth = 0i32;
    for b in s.bytes() {
        match b {
            b'(' => depth += 1,
            b')' => depth -= 1,
            // A comma inside parentheses separates a nested call's arguments
            // (`Gosub(ctx,s,1(a,b))`); outside them it would end this argument.
            b',' if depth == 0 => return Err(refuse("argument", s, rule)),
            _ => {}
        }
        if depth < 0 {
            return Err(refuse("argument", s, rule));
        }
    }
    if alphabet && depth == 0 {
        Ok(s.to_owned())
    } else {
        Err(refuse("argument", s, rule))
    }
}

/// One priority: an application with its arguments, optionally labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    label: Option<String>,
    app: String,
    args: Vec<Arg>,
}

impl Step {
    pub fn new(app: &str, args: Vec<Arg>) -> Result<Step, RenderError> {
        if !(1..=40).contains(&app.len()) || !app.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(refuse("application", app, "letters and digits"));
        }
        Ok(Step {
            label: None,
            app: app.to_owned(),
            args,
        })
    }

    pub fn labelled(mut self, label: &str) -> Result<Step, RenderError> {
        if !(1..=40).contains(&label.len())
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(refuse("label", label, "letters, digits, '-', '_'"));
        }
        self.label = Some(label.to_owned());
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub pattern: ExtPattern,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub name: ContextName,
    pub includes: Vec<ContextName>,
    pub extensions: Vec<Extension>,
}

/// Renders contexts in the order given (callers sort them); `header` lines become comments.
pub fn render(header: &[&str], contexts: &[Context]) -> String {
    let mut out = String::new();
    for line in header {
        // Header text is pbxdesk's own, but a newline in it must not start a dialplan line.
        let _ = writeln!(out, "; {}", line.replace(['\r', '\n'], " "));
    }
    for c in contexts {
        let _ = write!(out, "\n[{}]\n", c.name.as_str());
        for inc in &c.includes {
            let _ = writeln!(out, "include => {}", inc.as_str());
        }
        for e in &c.extensions {
            for (i, step) in e.steps.iter().enumerate() {
                if i == 0 {
                    let _ = write!(out, "exten => {},1", e.pattern.0);
                } else {
                    out.push_str(" same => n");
                }
                if let Some(l) = &step.label {
                    let _ = write!(out, "({l})");
                }
                let _ = write!(out, ",{}(", step.app);
                for (j, a) in step.args.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    a.write(&mut out);
                }
                out.push_str(")\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(name: &str) -> Context {
        Context {
            name: ContextName::new("acme-internal").unwrap(),
            includes: vec![ContextName::new("acme-features").unwrap()],
            extensions: vec![Extension {
                pattern: ExtPattern::new("100").unwrap(),
                steps: vec![
                    Step::new(
                        "Set",
                        vec![Arg::raw("CALLERID(name)=").unwrap().then_text(name)],
                    )
                    .unwrap(),
                    Step::new(
                        "Dial",
                        vec![
                            Arg::raw("PJSIP/acme-100&PJSIP/acme-100-2").unwrap(),
                            Arg::raw("30").unwrap(),
                        ],
                    )
                    .unwrap(),
                    Step::new("Hangup", vec![])
                        .unwrap()
                        .labelled("done")
                        .unwrap(),
                ],
            }],
        }
    }

    #[test]
    fn golden() {
        let got = render(&["generated by pbxdesk; do not edit"], &[sample("Zoë")]);
        let want = "; generated by pbxdesk; do not edit\n\
                    \n[acme-internal]\n\
                    include => acme-features\n\
                    exten => 100,1,Set(CALLERID(name)=${BASE64_DECODE(Wm/Dqw==)})\n \
                    same => n,Dial(PJSIP/acme-100&PJSIP/acme-100-2,30)\n \
                    same => n(done),Hangup()\n";
        assert_eq!(got, want);
    }

    #[test]
    fn own_tokens_with_syntax_are_refused() {
        for bad in [
            "a;b", "a,b", "a)b", "a(b", ")(", "a\nb", "a b", "[x]", "\\", "\"q\"",
        ] {
            assert!(Arg::raw(bad).is_err(), "{bad:?}");
        }
        assert!(ContextName::new("Acme").is_err());
        assert!(ContextName::new("a]b").is_err());
        assert!(ExtPattern::new("100;x").is_err());
        assert!(ExtPattern::new("_1XX.").is_ok());
        assert!(Step::new("Dial(x)", vec![]).is_err());
    }

    #[test]
    fn caller_data_only_through_filter() {
        for bad in [
            "${EXTEN}",
            "1(${EXTEN:1},acme)",
            "PJSIP/${EXTEN}@x",
            "CALLERID(num)=${CALLERID(num)}",
            "${PJSIP_HEADER(read,X-Foo)}",
            "${DB(pbxdesk/a/b)}",
            // A filter that lets ',' or '&' through does not count.
            "${FILTER(0-9\\,,${EXTEN})}",
            "${FILTER(0123456789&,${EXTEN})}",
            "${FILTER(,${EXTEN})}",
        ] {
            assert!(Arg::raw(bad).is_err(), "{bad:?}");
        }
        for good in [
            filtered(DIALLED, "${EXTEN}"),
            format!("1({},acme)", filtered(DIALLED, "${EXTEN:1}")),
            filtered("01", "${DB(pbxdesk/a/dnd)}"),
        ] {
            assert!(Arg::raw(&good).is_ok(), "{good:?}");
        }
    }

    /// Splits a rendered application call back into its arguments (no escapes exist to handle,
    /// by construction) and decodes the Text ones.
    fn decode_args(line: &str) -> Vec<String> {
        let open = line.find('(').unwrap();
        let inner = &line[open + 1..line.len() - 1];
        inner
            .split(',')
            .map(|a| {
                let mut out = String::new();
                let mut rest = a;
                while let Some(i) = rest.find("${BASE64_DECODE(") {
                    out.push_str(&rest[..i]);
                    let after = &rest[i + "${BASE64_DECODE(".len()..];
                    let end = after.find(")}").unwrap();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&after[..end])
                        .unwrap();
                    out.push_str(&String::from_utf8(bytes).unwrap());
                    rest = &after[end + 2..];
                }
                out.push_str(rest);
                out
            })
            .collect()
    }

    proptest! {
        /// Any text, however hostile (CR, LF, `;`, `;--`, `${SHELL(...)}`, `$[...]`, `&`, `,`,
        /// `)`, `[`, quotes, backslashes, unicode, long), stays one argument on one line,
        /// carries no dialplan syntax, and decodes back to itself.
        #[test]
        fn person_text_cannot_break_out(
            s in prop_oneof![
                any::<String>(),
                "[;,)(\\[\\]\"'\\\\&$ {}\\r\\n\\-]{0,60}",
                Just("${SHELL(rm -rf /)}".to_owned()),
                Just("x;-- block --;y".to_owned()),
                Just("$[1+1],Hangup()\nexten => 666,1,System(id)".to_owned()),
                "\\PC{0,2000}",
            ]
        ) {
            let c = Context {
                name: ContextName::new("t").unwrap(),
                includes: vec![],
                extensions: vec![Extension {
                    pattern: ExtPattern::new("s").unwrap(),
                    steps: vec![Step::new("Set", vec![Arg::raw("X=").unwrap().then_text(&s), Arg::text(&s), Arg::raw("1").unwrap()]).unwrap()],
                }],
            };
            let out = render(&[], &[c]);
            let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
            prop_assert_eq!(lines.len(), 2, "one context line and one extension line: {:?}", out);
            let call = lines[1].trim_start_matches("exten => s,1,");
            prop_assert!(!call.contains(';'));
            let args = decode_args(call);
            prop_assert_eq!(args.len(), 3);
            prop_assert_eq!(&args[0], &format!("X={s}"));
            prop_assert_eq!(&args[1], &s);
            prop_assert_eq!(&args[2], "1");
        }

        #[test]
        fn rendering_is_deterministic(s in any::<String>()) {
            prop_assert_eq!(render(&["h"], &[sample(&s)]), render(&["h"], &[sample(&s)]));
        }
    }
}
