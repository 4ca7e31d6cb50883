//! A typed model of extensions.conf and its one renderer.
//!
//! Nothing of a person's (names, labels, caller IDs) is written into the dialplan as it is:
//! `Part::Text` is emitted as `${BASE64_DECODE(…)}` (func_base64, loaded by `autoload = yes`).
//! The base64 alphabet holds none of the characters the dialplan parser or the variable
//! substituter treat as syntax (`;` comments, `,` and `)` end arguments, `${`/`$[` are
//! evaluated, CR/LF end the line), and a function's result is not substituted again, so such
//! text can neither break out of its argument nor be evaluated. Everything else (`Part::Raw`,
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

fn context_ok(s: &str) -> Result<(), RenderError> {
    let ok = (1..=79).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(refuse("context", s, "1 to 79 of a-z, 0-9, '-', '_'"))
    }
}

/// An extension: digits, a special one (s, i, t, h), or a pattern starting with '_'.
fn pattern_ok(s: &str) -> Result<(), RenderError> {
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
        Ok(())
    } else {
        Err(refuse(
            "extension",
            s,
            "digits, s/i/t/h, or a pattern like _1XXX",
        ))
    }
}

fn app_ok(app: &str) -> Result<(), RenderError> {
    if (1..=40).contains(&app.len()) && app.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(refuse("application", app, "letters and digits"))
    }
}

fn label_ok(label: &str) -> Result<(), RenderError> {
    if (1..=40).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(refuse("label", label, "letters, digits, '-', '_'"))
    }
}

/// One piece of an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    /// pbxdesk's own token: letters, digits, `_-.:/@+*#&=<>!{}$%`, balanced parentheses and
    /// commas inside them, no spaces; caller data only through `FILTER()`.
    Raw(&'a str),
    /// A person's text, carried as base64 and decoded by Asterisk at call time.
    Text(&'a str),
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
    // Every token starts with `${`: find those, then compare prefixes (the render checks every
    // argument; building a substring searcher per call was a sixth of its time).
    if !s.contains('$') {
        return None;
    }
    let bytes = s.as_bytes();
    for i in
        (0..bytes.len().saturating_sub(1)).filter(|&i| bytes[i] == b'$' && bytes[i + 1] == b'{')
    {
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

fn checked_raw(s: &str) -> Result<(), RenderError> {
    let rule = "pbxdesk's own tokens only (a person's text is carried as base64)";
    if unfiltered_caller_data(s).is_some() {
        return Err(refuse(
            "argument",
            s,
            "caller-controlled data (EXTEN, CALLERID, headers, AstDB) only through FILTER()",
        ));
    }
    if s.len() > 512 {
        return Err(refuse("argument", s, rule));
    }
    // One pass: the alphabet, and parentheses balanced with commas only inside them (a comma
    // inside separates a nested call's arguments, `Gosub(ctx,s,1(a,b))`; outside it would end
    // this argument).
    let mut depth = 0i32;
    for b in s.bytes() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(refuse("argument", s, rule));
                }
            }
            b',' if depth == 0 => return Err(refuse("argument", s, rule)),
            b if b.is_ascii_alphanumeric() || b"_-.:/@+*#&=<>!{}$%,".contains(&b) => {}
            _ => return Err(refuse("argument", s, rule)),
        }
    }
    if depth != 0 {
        return Err(refuse("argument", s, rule));
    }
    Ok(())
}

/// One dialplan file, written as it is built (no model in between: the render of a large PBX
/// spent a third of its time allocating and freeing one). Every token is checked on its way in;
/// an extension any of whose tokens is refused is left out whole (its bytes are cut back) and
/// the refusal is kept for validation to report. Contexts come in the order they are opened;
/// an extension belongs to the context opened last.
pub struct Writer {
    out: String,
    contexts: Vec<(String, usize)>,
    /// Whether the context opened last was written (a refused name drops its extensions).
    open: bool,
    skipped: Vec<RenderError>,
}

/// What a finished [`Writer`] gives.
pub struct Written {
    pub text: String,
    /// Each context written, with its number of extensions.
    pub contexts: Vec<(String, usize)>,
    /// What was refused (and left out).
    pub skipped: Vec<RenderError>,
}

impl Writer {
    /// A file starting with `header` as comment lines.
    pub fn new(header: &[&str]) -> Writer {
        let mut out = String::new();
        for line in header {
            // Header text is pbxdesk's own, but a newline in it must not start a dialplan line.
            out.push_str("; ");
            out.extend(
                line.chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
            );
            out.push('\n');
        }
        Writer {
            out,
            contexts: Vec::new(),
            open: false,
            skipped: Vec::new(),
        }
    }

    /// Room for `bytes` more.
    pub fn reserve(&mut self, bytes: usize) {
        self.out.reserve(bytes);
    }

    /// Opens a context with its includes (an include refused is left out).
    pub fn context<S: AsRef<str>>(&mut self, name: &str, includes: &[S]) {
        self.open = match context_ok(name) {
            Ok(()) => true,
            Err(e) => {
                self.skipped.push(e);
                false
            }
        };
        if !self.open {
            return;
        }
        let _ = write!(self.out, "\n[{name}]\n");
        for inc in includes {
            let inc = inc.as_ref();
            match context_ok(inc) {
                Ok(()) => {
                    let _ = writeln!(self.out, "include => {inc}");
                }
                Err(e) => self.skipped.push(e),
            }
        }
        self.contexts.push((name.to_owned(), 0));
    }

    /// Adds an extension to the context opened last, its priorities written by `steps`; any
    /// refusal leaves the whole extension out.
    pub fn exten(
        &mut self,
        pattern: &str,
        steps: impl FnOnce(&mut Steps<'_>) -> Result<(), RenderError>,
    ) {
        if !self.open {
            return;
        }
        let mark = self.out.len();
        let result = pattern_ok(pattern).and_then(|()| {
            let mut s = Steps {
                out: &mut self.out,
                pattern,
                n: 0,
            };
            steps(&mut s)
        });
        match result {
            Ok(()) => {
                if let Some(last) = self.contexts.last_mut() {
                    last.1 += 1;
                }
            }
            Err(e) => {
                self.out.truncate(mark);
                self.skipped.push(e);
            }
        }
    }

    pub fn finish(self) -> Written {
        Written {
            text: self.out,
            contexts: self.contexts,
            skipped: self.skipped,
        }
    }
}

/// The priorities of one extension, written in order.
pub struct Steps<'w> {
    out: &'w mut String,
    pattern: &'w str,
    n: usize,
}

impl Steps<'_> {
    fn begin(&mut self, label: Option<&str>, app: &str) -> Result<(), RenderError> {
        app_ok(app)?;
        if let Some(l) = label {
            label_ok(l)?;
        }
        if self.n == 0 {
            let _ = write!(self.out, "exten => {},1", self.pattern);
        } else {
            self.out.push_str(" same => n");
        }
        if let Some(l) = label {
            let _ = write!(self.out, "({l})");
        }
        self.n += 1;
        self.out.push(',');
        self.out.push_str(app);
        self.out.push('(');
        Ok(())
    }

    /// A priority whose arguments are all pbxdesk's own tokens.
    pub fn step(&mut self, app: &str, args: &[&str]) -> Result<&mut Self, RenderError> {
        self.raw_step(None, app, args)
    }

    /// The same, labelled.
    pub fn labelled(
        &mut self,
        label: &str,
        app: &str,
        args: &[&str],
    ) -> Result<&mut Self, RenderError> {
        self.raw_step(Some(label), app, args)
    }

    fn raw_step(
        &mut self,
        label: Option<&str>,
        app: &str,
        args: &[&str],
    ) -> Result<&mut Self, RenderError> {
        for a in args {
            checked_raw(a)?;
        }
        self.begin(label, app)?;
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(a);
        }
        self.out.push_str(")\n");
        Ok(self)
    }

    /// A priority whose arguments join pbxdesk's tokens and a person's text, e.g.
    /// `CALLERID(name)=` followed by a display name.
    pub fn parts(&mut self, app: &str, args: &[&[Part<'_>]]) -> Result<&mut Self, RenderError> {
        for part in args.iter().flat_map(|a| a.iter()) {
            if let Part::Raw(s) = part {
                checked_raw(s)?;
            }
        }
        self.begin(None, app)?;
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            for part in *a {
                match part {
                    Part::Raw(s) => self.out.push_str(s),
                    Part::Text("") => {}
                    Part::Text(s) => {
                        self.out.push_str("${BASE64_DECODE(");
                        base64::engine::general_purpose::STANDARD.encode_string(s, self.out);
                        self.out.push_str(")}");
                    }
                }
            }
        }
        self.out.push_str(")\n");
        Ok(self)
    }

    /// A priority of pbxdesk's own constant text (`$["${X}" = "1"]?label`): any text but CR,
    /// LF and `;`. Only `&'static str` is accepted, so nothing read at run time can get here.
    pub fn own(
        &mut self,
        label: Option<&'static str>,
        app: &'static str,
        args: &[&'static str],
    ) -> Result<&mut Self, RenderError> {
        self.begin(label, app)?;
        for (i, a) in args.iter().enumerate() {
            debug_assert!(!a.contains(['\r', '\n', ';']), "{a:?}");
            if i > 0 {
                self.out.push(',');
            }
            self.out
                .extend(a.chars().filter(|c| !matches!(c, '\r' | '\n' | ';')));
        }
        self.out.push_str(")\n");
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(name: &str) -> String {
        let mut w = Writer::new(&["generated by pbxdesk; do not edit"]);
        w.context("acme-internal", &["acme-features"]);
        w.exten("100", |e| {
            e.parts("Set", &[&[Part::Raw("CALLERID(name)="), Part::Text(name)]])?
                .step("Dial", &["PJSIP/acme-100&PJSIP/acme-100-2", "30"])?
                .labelled("done", "Hangup", &[])?;
            Ok(())
        });
        w.finish().text
    }

    #[test]
    fn golden() {
        let want = "; generated by pbxdesk; do not edit\n\
                    \n[acme-internal]\n\
                    include => acme-features\n\
                    exten => 100,1,Set(CALLERID(name)=${BASE64_DECODE(Wm/Dqw==)})\n \
                    same => n,Dial(PJSIP/acme-100&PJSIP/acme-100-2,30)\n \
                    same => n(done),Hangup()\n";
        assert_eq!(sample("Zoë"), want);
    }

    /// An extension with one refused token is left out whole, bytes and count; the refusal is
    /// kept; the extensions around it stay.
    #[test]
    fn a_refused_extension_is_cut_whole() {
        let mut w = Writer::new(&[]);
        w.context("t", &["ok", "Bad!"]);
        w.exten("1", |e| e.step("NoOp", &["one"]).map(|_| ()));
        w.exten("2", |e| {
            e.step("NoOp", &["two"])?.step("Set", &["a;b"])?;
            Ok(())
        });
        w.exten("3;x", |e| e.step("NoOp", &[]).map(|_| ()));
        w.exten("4", |e| e.step("NoOp", &["four"]).map(|_| ()));
        w.context("Nope", &[""; 0]);
        w.exten("5", |e| e.step("NoOp", &[]).map(|_| ()));
        let done = w.finish();
        assert_eq!(
            done.text,
            "\n[t]\ninclude => ok\nexten => 1,1,NoOp(one)\nexten => 4,1,NoOp(four)\n"
        );
        assert_eq!(done.contexts, vec![("t".to_owned(), 2)]);
        let what: Vec<&str> = done.skipped.iter().map(|e| e.what).collect();
        assert_eq!(what, ["context", "argument", "extension", "context"]);
    }

    #[test]
    fn own_tokens_with_syntax_are_refused() {
        for bad in [
            "a;b", "a,b", "a)b", "a(b", ")(", "a\nb", "a b", "[x]", "\\", "\"q\"",
        ] {
            assert!(checked_raw(bad).is_err(), "{bad:?}");
        }
        assert!(context_ok("Acme").is_err());
        assert!(context_ok("a]b").is_err());
        assert!(pattern_ok("100;x").is_err());
        assert!(pattern_ok("_1XX.").is_ok());
        assert!(app_ok("Dial(x)").is_err());
        assert!(label_ok("a b").is_err());
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
            assert!(checked_raw(bad).is_err(), "{bad:?}");
        }
        for good in [
            filtered(DIALLED, "${EXTEN}"),
            format!("1({},acme)", filtered(DIALLED, "${EXTEN:1}")),
            filtered("01", "${DB(pbxdesk/a/dnd)}"),
        ] {
            assert!(checked_raw(&good).is_ok(), "{good:?}");
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
            let mut w = Writer::new(&[]);
            w.context("t", &[""; 0]);
            w.exten("s", |e| {
                e.parts("Set", &[&[Part::Raw("X="), Part::Text(&s)], &[Part::Text(&s)], &[Part::Raw("1")]])?;
                Ok(())
            });
            let out = w.finish().text;
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
            prop_assert_eq!(sample(&s), sample(&s));
        }
    }
}
