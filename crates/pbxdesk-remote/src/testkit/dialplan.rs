//! The Asterisk double's dialplan executor: runs a call through the dialplan the double loaded,
//! the way pbx_config and the PBX core run it, so a test can ask "which endpoints does this
//! dialled string make Asterisk dial?".
//!
//! What it follows (Asterisk 22 source behaviour, seen on the real PBX in issue 10's log
//! `Executing [91,globex,globex-2000@acme_cos_default:1] Gosub(...)`):
//! - variables and functions are substituted into an application's data FIRST, and the
//!   application splits its arguments on `,` AFTERWARDS (paren- and quote-aware), so a `,` that
//!   came out of `${EXTEN}` adds arguments and a `&` adds Dial targets;
//! - `${...}` ends at its matching brace in the template (counted before substitution); the
//!   result of a variable or function is never substituted again; a function's arguments run
//!   from the first `(` to the last `)`; `${VAR:offset:length}` takes a substring;
//! - `Gosub(ctx,ext,prio(args))` splits `args` on `,` (raw, paren-aware); ARGn are local to the
//!   frame; `Return` goes back to the priority after the Gosub;
//! - a context's own extensions are searched before its includes (in the order written); an
//!   exact extension beats a pattern; among patterns the more specific wins; `.` matches one or
//!   more of ANY character, `!` zero or more;
//! - falling off the end of an extension hangs up; a Local channel inherits only `__` variables.
//!
//! Only the applications and functions pbxdesk renders are modelled: anything else is an error,
//! so a test can never pass by the double ignoring a step it does not know.

use std::collections::{BTreeMap, BTreeSet};

/// One priority as loaded: its label, application and raw data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priority {
    pub label: Option<String>,
    pub app: String,
    pub data: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextDef {
    pub includes: Vec<String>,
    /// In file order: pattern -> priorities.
    pub extensions: Vec<(String, Vec<Priority>)>,
}

/// The loaded dialplan, with every priority (the `Dialplan` counts are derived from the same
/// lines by the same loader).
pub type Program = BTreeMap<String, ContextDef>;

/// Splits `pat,prio(label),App(data)` / `prio(label),App(data)` lines as pbx_config does.
pub(crate) fn parse_priority(prio: &str, appdata: &str) -> Priority {
    let label = prio
        .split_once('(')
        .and_then(|(_, l)| l.strip_suffix(')'))
        .map(str::to_owned);
    let appdata = appdata.trim();
    let (app, data) = match appdata.find('(') {
        Some(i) => {
            let rest = &appdata[i + 1..];
            let data = rest.rfind(')').map_or(rest, |j| &rest[..j]);
            (&appdata[..i], data)
        }
        None => match appdata.split_once(',') {
            Some((a, d)) => (a, d),
            None => (appdata, ""),
        },
    };
    Priority {
        label,
        app: app.trim().to_owned(),
        data: data.to_owned(),
    }
}

/// What one Dial target reached.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dialed {
    /// The PJSIP endpoint dialled (`PJSIP/ep` or `PJSIP/number@ep`).
    pub endpoint: String,
    /// The number sent to it (`PJSIP/number@ep`), if any.
    pub number: Option<String>,
}

/// Everything a call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every Dial target, in order, through Local channels too.
    pub dialed: Vec<Dialed>,
    /// `app(data after substitution)` of each priority run, for messages.
    pub trace: Vec<String>,
    /// Mailboxes VoiceMail was started for.
    pub voicemail: Vec<String>,
    /// No extension matched the dialled string at the start.
    pub no_match: bool,
    /// Each `UserEvent(name,Key: value,…)` sent, its arguments split.
    pub user_events: Vec<Vec<String>>,
}

/// What a Dial answers (DIALSTATUS), given what it reached.
pub type DialStatus<'a> = Box<dyn Fn(&[Dialed]) -> String + 'a>;

/// A call's environment: the dialplan, AstDB, and what Dial answers.
pub struct Executor<'a> {
    pub program: &'a Program,
    pub db: BTreeMap<String, String>,
    /// DIALSTATUS a Dial gets (default CHANUNAVAIL: every fallback is explored).
    pub dial_status: DialStatus<'a>,
    /// Priorities a call may run before it counts as a loop.
    pub max_steps: usize,
    /// `${EPOCH}`: the call's clock, in seconds. A Dial that is not answered moves it on by its
    /// timeout, as the ringing would.
    pub epoch: i64,
    /// Every Dial's timeout argument, in order (what each ring was given).
    pub dial_timeouts: Vec<String>,
}

struct Frame {
    ret: (String, String, usize),
    args: BTreeMap<String, String>,
}

struct Channel {
    context: String,
    exten: String,
    /// Index into the extension's priorities.
    pc: usize,
    vars: BTreeMap<String, String>,
    inherit: BTreeSet<String>,
    frames: Vec<Frame>,
}

/// Asterisk's pattern match (after the `_`).
fn pattern_matches(pat: &str, s: &str) -> bool {
    let Some(p) = pat.strip_prefix('_') else {
        return pat == s;
    };
    fn go(p: &[u8], s: &[u8]) -> bool {
        let Some((&c, rest)) = p.split_first() else {
            return s.is_empty();
        };
        match c {
            b'-' => go(rest, s),
            b'.' => !s.is_empty(),
            b'!' => true,
            b'[' => {
                let Some(end) = rest.iter().position(|&b| b == b']') else {
                    return false;
                };
                let (set, after) = (&rest[..end], &rest[end + 1..]);
                let Some((&ch, srest)) = s.split_first() else {
                    return false;
                };
                let mut ok = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        ok |= (set[i]..=set[i + 2]).contains(&ch);
                        i += 3;
                    } else {
                        ok |= set[i] == ch;
                        i += 1;
                    }
                }
                ok && go(after, srest)
            }
            _ => {
                let Some((&ch, srest)) = s.split_first() else {
                    return false;
                };
                let ok = match c.to_ascii_uppercase() {
                    b'X' => ch.is_ascii_digit(),
                    b'Z' => (b'1'..=b'9').contains(&ch),
                    b'N' => (b'2'..=b'9').contains(&ch),
                    _ => c == ch,
                };
                ok && go(rest, srest)
            }
        }
    }
    go(p.as_bytes(), s.as_bytes())
}

/// Sort key for specificity (Asterisk's ext_cmp): fewer characters matched per position first.
fn specificity(pat: &str) -> Vec<u32> {
    let Some(p) = pat.strip_prefix('_') else {
        return vec![0];
    };
    let b = p.as_bytes();
    let mut out = vec![1];
    let mut i = 0;
    while i < b.len() {
        let w = match b[i].to_ascii_uppercase() {
            b'X' => 10 << 8,
            b'Z' => 9 << 8,
            b'N' => 8 << 8,
            b'.' => 0x3fe << 8,
            b'!' => 0x3ff << 8,
            b'-' => {
                i += 1;
                continue;
            }
            b'[' => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b']')
                    .map_or(b.len(), |e| i + e);
                let n = (end - i).saturating_sub(1) as u32;
                i = end;
                n.max(1) << 8
            }
            c => (1 << 8) | u32::from(c),
        };
        out.push(w);
        i += 1;
    }
    out
}

/// Splits application data on `,` outside parentheses and quotes, as
/// `ast_app_separate_args` does; `strip` removes quotes and backslash escapes
/// (AST_STANDARD_APP_ARGS) or keeps them (the RAW variants).
fn split_args(data: &str, strip: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut paren, mut quote, mut esc) = (0u32, false, false);
    for c in data.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' if strip => esc = true,
            '"' => {
                quote = !quote;
                if !strip {
                    cur.push(c);
                }
            }
            '(' => {
                paren += 1;
                cur.push(c);
            }
            ')' => {
                paren = paren.saturating_sub(1);
                cur.push(c);
            }
            ',' if paren == 0 && !quote => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn filter(allowed: &str, s: &str) -> String {
    let a = allowed.as_bytes();
    let mut set = BTreeSet::new();
    let mut i = 0;
    while i < a.len() {
        if i + 2 < a.len() && a[i + 1] == b'-' {
            for c in a[i]..=a[i + 2] {
                set.insert(c);
            }
            i += 3;
        } else {
            set.insert(a[i]);
            i += 1;
        }
    }
    s.bytes()
        .filter(|b| set.contains(b))
        .map(char::from)
        .collect()
}

/// Asterisk's `substring()` (pbx_variables.c) with `sscanf("%d:%d")`'s defaults: offset 0,
/// length INT_MAX; a length of 0 gives nothing; negative values count from the end. Written
/// apart from the renderer's model of the same (`pbxdesk_render::pbx::dialable`) on purpose:
/// the double is the oracle that model is tested against, so it shares no code with it.
fn substring(v: &str, offset: i64, length: i64) -> String {
    let b = v.as_bytes();
    let lr = b.len() as i64;
    if offset == 0 && length >= lr {
        return v.to_owned();
    }
    let offset = if offset < 0 {
        (lr + offset).max(0)
    } else {
        offset
    };
    if offset >= lr {
        return String::new();
    }
    let rest = &b[offset as usize..];
    let keep = if length >= 0 {
        length.min(lr - offset)
    } else if lr > offset - length {
        lr + length - offset
    } else {
        0
    };
    String::from_utf8_lossy(&rest[..keep.max(0) as usize]).into_owned()
}

/// `sscanf(s, "%30d:%30d", &offset, &length)`: what it cannot read keeps its default.
fn scan_offset_length(s: &str) -> (i64, i64) {
    const MAX: i64 = i32::MAX as i64;
    fn int(s: &str) -> Option<(i64, &str)> {
        let t = s.trim_start();
        let (sign, rest) = match t.as_bytes().first() {
            Some(b'-') => (-1, &t[1..]),
            Some(b'+') => (1, &t[1..]),
            _ => (1, t),
        };
        let n = rest.bytes().take(30).take_while(u8::is_ascii_digit).count();
        (n > 0).then(|| {
            let v = rest[..n].parse::<i64>().unwrap_or(MAX).min(MAX);
            (sign * v, &rest[n..])
        })
    }
    let Some((offset, rest)) = int(s) else {
        return (0, MAX);
    };
    let length = rest.strip_prefix(':').and_then(int).map_or(MAX, |(l, _)| l);
    (offset, length)
}

/// ExecIf's two applications, split at the ':' outside parentheses.
fn split_apps(s: &str) -> (&str, &str) {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth == 0 => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    (s, "")
}

/// Asterisk expression (`$[...]`) for what pbxdesk renders: quoted strings, numbers, `=`, `!=`,
/// `<`, `>`, `<=`, `>=`, `&`, `|`, `+`, `-`, `%` and parentheses.
fn eval_expr(s: &str) -> Result<String, String> {
    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        S(String),
        Op(&'static str),
    }
    let mut toks = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let mut v = String::new();
            i += 1;
            while i < b.len() && b[i] != '"' {
                v.push(b[i]);
                i += 1;
            }
            i += 1;
            toks.push(Tok::S(v));
        } else if let Some(op) = ["!=", "<=", ">="]
            .iter()
            .find(|o| o.starts_with(c) && o.ends_with(next.unwrap_or(' ')))
        {
            toks.push(Tok::Op(op));
            i += 2;
        } else if let Some(op) = ["=", "&", "|", "+", "-", "<", ">", "%", "(", ")"]
            .iter()
            .find(|o| o.starts_with(c))
        {
            toks.push(Tok::Op(op));
            i += 1;
        } else {
            let mut v = String::new();
            while i < b.len() && !b[i].is_whitespace() && !"=&|+-<>!%()\"".contains(b[i]) {
                v.push(b[i]);
                i += 1;
            }
            toks.push(Tok::S(v));
        }
    }
    let truthy = |v: &str| !v.is_empty() && v != "0";
    let num = |v: &str| v.trim().parse::<i64>().ok();
    const LEVELS: &[&[&str]] = &[
        &["|"],
        &["&"],
        &["=", "!=", "<", ">", "<=", ">="],
        &["+", "-"],
        &["%"],
    ];
    // Precedence, lowest first: | & comparisons + - %.
    fn level(
        toks: &[Tok],
        ops: &[&[&str]],
        f: &dyn Fn(&str, String, String) -> Result<String, String>,
    ) -> Result<String, String> {
        let Some((these, lower)) = ops.split_first() else {
            return match toks {
                [Tok::S(v)] => Ok(v.clone()),
                [] => Ok(String::new()),
                [Tok::Op("("), inner @ .., Tok::Op(")")] => level(inner, LEVELS, f),
                _ => Err(format!("expression not understood: {toks:?}")),
            };
        };
        // Left-associative: split at the last operator of this level outside parentheses.
        let mut depth = 0i32;
        let mut at = None;
        for (i, t) in toks.iter().enumerate() {
            match t {
                Tok::Op("(") => depth += 1,
                Tok::Op(")") => depth -= 1,
                Tok::Op(o) if depth == 0 && these.contains(o) => at = Some(i),
                _ => {}
            }
        }
        if let Some(pos) = at {
            let Tok::Op(op) = &toks[pos] else {
                return Err("operator".into());
            };
            let l = level(&toks[..pos], ops, f)?;
            let r = level(&toks[pos + 1..], lower, f)?;
            return f(op, l, r);
        }
        level(toks, lower, f)
    }
    let f = |op: &str, l: String, r: String| -> Result<String, String> {
        let b = |x: bool| if x { "1".to_owned() } else { "0".to_owned() };
        Ok(match op {
            "|" => {
                if truthy(&l) {
                    l
                } else {
                    r
                }
            }
            "&" => b(truthy(&l) && truthy(&r)),
            "=" => b(l == r),
            "!=" => b(l != r),
            "<" | ">" | "<=" | ">=" => {
                let ord = match (num(&l), num(&r)) {
                    (Some(a), Some(c)) => a.cmp(&c),
                    _ => l.cmp(&r),
                };
                b(match op {
                    "<" => ord.is_lt(),
                    ">" => ord.is_gt(),
                    "<=" => ord.is_le(),
                    _ => ord.is_ge(),
                })
            }
            "+" | "-" | "%" => {
                let (Some(a), Some(c)) = (num(&l), num(&r)) else {
                    return Err(format!("not a number in {l} {op} {r}"));
                };
                match op {
                    "+" => a + c,
                    "-" => a - c,
                    _ if c == 0 => return Err(format!("{l} % 0")),
                    _ => a % c,
                }
                .to_string()
            }
            _ => return Err(format!("operator {op}")),
        })
    };
    level(&toks, LEVELS, &f)
}

impl<'a> Executor<'a> {
    pub fn new(program: &'a Program) -> Self {
        Executor {
            program,
            db: BTreeMap::new(),
            dial_status: Box::new(|_| "CHANUNAVAIL".to_owned()),
            max_steps: 5_000,
            epoch: 1_764_806_400,
            dial_timeouts: Vec::new(),
        }
    }

    /// Where `exten` goes in `context`: own extensions (exact first, then the most specific
    /// pattern), then each include in order.
    fn find(&self, context: &str, exten: &str, seen: &mut Vec<String>) -> Option<(String, usize)> {
        if seen.iter().any(|s| s == context) || seen.len() > 32 {
            return None;
        }
        seen.push(context.to_owned());
        let c = self.program.get(context)?;
        let best = c
            .extensions
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| pattern_matches(p, exten))
            .min_by_key(|(i, (p, _))| (specificity(p), *i));
        if let Some((i, _)) = best {
            return Some((context.to_owned(), i));
        }
        c.includes
            .iter()
            .find_map(|inc| self.find(inc, exten, seen))
    }

    fn lookup(&self, ch: &Channel, name: &str) -> String {
        if let Some(f) = ch.frames.last() {
            if let Some(v) = f.args.get(name) {
                return v.clone();
            }
        }
        match name {
            "EXTEN" => ch.exten.clone(),
            "CONTEXT" => ch.context.clone(),
            "EPOCH" => self.epoch.to_string(),
            _ => ch.vars.get(name).cloned().unwrap_or_default(),
        }
    }

    /// `${name}` after the name itself was substituted.
    fn eval_var(&mut self, ch: &Channel, name: &str) -> Result<String, String> {
        let (mut parens, mut isfunc, mut split) = (0i32, false, None);
        for (i, c) in name.char_indices() {
            match c {
                '(' => {
                    parens += 1;
                    isfunc = true;
                }
                ')' => parens -= 1,
                ':' if parens == 0 => {
                    split = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let (base, sub) = match split {
            Some(i) => (&name[..i], Some(&name[i + 1..])),
            None => (name, None),
        };
        let value = if isfunc {
            let open = base.find('(').unwrap_or(base.len());
            let fname = &base[..open];
            let rest = base.get(open + 1..).unwrap_or("");
            let args = rest.rfind(')').map_or(rest, |j| &rest[..j]);
            self.function(ch, fname, args)?
        } else {
            self.lookup(ch, base)
        };
        Ok(match sub {
            None => value,
            Some(s) => {
                let (offset, length) = scan_offset_length(s);
                substring(&value, offset, length)
            }
        })
    }

    fn function(&mut self, ch: &Channel, name: &str, args: &str) -> Result<String, String> {
        Ok(match name {
            "FILTER" => {
                // AST_NONSTANDARD_RAW_ARGS with two arguments: the string is all the rest.
                let (allowed, s) = args.split_once(',').unwrap_or((args, ""));
                filter(allowed, s)
            }
            "DB" => self.db.get(args).cloned().unwrap_or_default(),
            "DB_DELETE" => self.db.remove(args).unwrap_or_default(),
            "DIALPLAN_EXISTS" => {
                let a = split_args(args, false);
                let ctx = a.first().map(String::as_str).unwrap_or("");
                let ext = a.get(1).map(String::as_str).unwrap_or("s");
                let found = self
                    .program
                    .get(ctx)
                    .is_some_and(|c| c.extensions.iter().any(|(p, _)| pattern_matches(p, ext)));
                if found { "1" } else { "0" }.to_owned()
            }
            "BASE64_DECODE" => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(args.trim())
                    .map_err(|e| format!("BASE64_DECODE({args}): {e}"))?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            "CALLERID" => self.lookup(ch, &format!("CALLERID({args})")),
            // IF(cond?iftrue:iffalse), the condition already substituted (func_logic).
            "IF" => {
                let (cond, rest) = args.split_once('?').unwrap_or((args, ""));
                let (yes, no) = rest.split_once(':').unwrap_or((rest, ""));
                let c = cond.trim();
                if !c.is_empty() && c != "0" { yes } else { no }.to_owned()
            }
            other => return Err(format!("function {other}() is not modelled by the double")),
        })
    }

    /// pbx_substitute_variables: `${...}` and `$[...]`, results never substituted again.
    fn subst(&mut self, ch: &Channel, t: &str) -> Result<String, String> {
        let b = t.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' && i + 1 < b.len() && (b[i + 1] == b'{' || b[i + 1] == b'[') {
                let (open, close) = if b[i + 1] == b'{' {
                    (b'{', b'}')
                } else {
                    (b'[', b']')
                };
                let mut depth = 1;
                let mut j = i + 2;
                while j < b.len() && depth > 0 {
                    if b[j] == open {
                        depth += 1;
                    } else if b[j] == close {
                        depth -= 1;
                    }
                    j += 1;
                }
                if depth != 0 {
                    return Err(format!("unclosed {} in {t}", open as char));
                }
                let inner = self.subst(ch, &t[i + 2..j - 1])?;
                let v = if open == b'{' {
                    self.eval_var(ch, &inner)?
                } else {
                    eval_expr(&inner)?
                };
                out.push_str(&v);
                i = j;
            } else {
                let c = t[i..].chars().next().unwrap_or(' ');
                out.push(c);
                i += c.len_utf8();
            }
        }
        Ok(out)
    }

    /// Runs a call that enters `context` dialling `exten`, with the endpoint's `set_var`
    /// variables.
    pub fn call(
        &mut self,
        context: &str,
        exten: &str,
        vars: &[(&str, &str)],
    ) -> Result<Outcome, String> {
        let mut out = Outcome::default();
        let ch = Channel {
            context: context.to_owned(),
            exten: exten.to_owned(),
            pc: 0,
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            inherit: BTreeSet::new(),
            frames: Vec::new(),
        };
        let mut steps = 0;
        self.run(ch, &mut out, 0, &mut steps)?;
        Ok(out)
    }

    /// Jumps to `[[ctx,]ext,]prio` (a priority number or a label).
    fn goto(&self, ch: &mut Channel, target: &str) -> Result<(), String> {
        let parts: Vec<&str> = target.split(',').map(str::trim).collect();
        let (ctx, ext, prio) = match parts.as_slice() {
            [p] => (ch.context.clone(), ch.exten.clone(), *p),
            [e, p] => (ch.context.clone(), (*e).to_owned(), *p),
            [c, e, p] => ((*c).to_owned(), (*e).to_owned(), *p),
            _ => return Err(format!("Goto target {target:?}")),
        };
        let (found_ctx, idx) = self
            .find(&ctx, &ext, &mut Vec::new())
            .ok_or_else(|| format!("Goto {target}: no extension {ext} in {ctx}"))?;
        let prios = &self.program[&found_ctx].extensions[idx].1;
        let pc = match prio.parse::<usize>() {
            Ok(n) if n >= 1 => n - 1,
            _ => prios
                .iter()
                .position(|p| p.label.as_deref() == Some(prio))
                .ok_or_else(|| format!("Goto {target}: no label {prio}"))?,
        };
        ch.context = ctx;
        ch.exten = ext;
        ch.pc = pc;
        Ok(())
    }

    fn run(
        &mut self,
        mut ch: Channel,
        out: &mut Outcome,
        depth: usize,
        steps: &mut usize,
    ) -> Result<(), String> {
        let Some((_, _)) = self.find(&ch.context, &ch.exten, &mut Vec::new()) else {
            if depth == 0 {
                out.no_match = true;
            }
            return Ok(());
        };
        loop {
            *steps += 1;
            if *steps > self.max_steps {
                return Err(format!("more than {} priorities: a loop", self.max_steps));
            }
            let Some((found, idx)) = self.find(&ch.context, &ch.exten, &mut Vec::new()) else {
                return Ok(()); // hangs up
            };
            let Some(p) = self.program[&found].extensions[idx].1.get(ch.pc).cloned() else {
                return Ok(()); // fell off the end: autofallthrough hangs up
            };
            let data = self.subst(&ch, &p.data)?;
            out.trace.push(format!("{}({data})", p.app));
            ch.pc += 1;
            match p.app.as_str() {
                "NoOp" | "Log" | "Answer" | "Wait" | "Playback" | "Busy" | "VoiceMailMain" => {}
                "Hangup" => return Ok(()),
                "UserEvent" => out.user_events.push(split_args(&data, false)),
                "VoiceMail" => {
                    out.voicemail.push(split_args(&data, true).remove(0));
                    return Ok(());
                }
                "Set" => {
                    let (name, value) = data.split_once('=').unwrap_or((&data, ""));
                    let name = name.trim();
                    if let Some(path) = name.strip_prefix("DB(").and_then(|r| r.strip_suffix(')')) {
                        self.db.insert(path.to_owned(), value.to_owned());
                    } else if let Some(n) = name.strip_prefix("__") {
                        ch.inherit.insert(n.to_owned());
                        ch.vars.insert(n.to_owned(), value.to_owned());
                    } else if let Some(f) =
                        ch.frames.last_mut().filter(|f| f.args.contains_key(name))
                    {
                        f.args.insert(name.to_owned(), value.to_owned());
                    } else {
                        ch.vars.insert(name.to_owned(), value.to_owned());
                    }
                }
                "Goto" => self.goto(&mut ch, &data)?,
                // ExecIf(cond?App(args)[:App(args)]): the apps pbxdesk runs through it.
                "ExecIf" => {
                    let (cond, apps) = data.split_once('?').unwrap_or((&data, ""));
                    let truthy = !cond.trim().is_empty() && cond.trim() != "0";
                    let (yes, no) = split_apps(apps);
                    let app = if truthy { yes } else { no };
                    match app.split_once('(').map(|(a, _)| a.trim()) {
                        None | Some("") => {}
                        Some("Hangup") => return Ok(()),
                        Some(other) => {
                            return Err(format!(
                                "ExecIf of {other}() is not modelled by the double"
                            ))
                        }
                    }
                }
                "GotoIf" | "GosubIf" => {
                    let (cond, targets) = data.split_once('?').unwrap_or((&data, ""));
                    let (yes, no) = targets.split_once(':').unwrap_or((targets, ""));
                    let t = if !cond.trim().is_empty() && cond.trim() != "0" {
                        yes
                    } else {
                        no
                    };
                    if t.is_empty() {
                        continue;
                    }
                    if p.app == "GotoIf" {
                        self.goto(&mut ch, t)?;
                    } else {
                        self.gosub(&mut ch, t)?;
                    }
                }
                "Gosub" => self.gosub(&mut ch, &data)?,
                "Return" => {
                    let f = ch.frames.pop().ok_or("Return without Gosub")?;
                    (ch.context, ch.exten, ch.pc) = f.ret;
                }
                "Dial" => {
                    let args = split_args(&data, true);
                    let mut reached = Vec::new();
                    for target in args.first().map(String::as_str).unwrap_or("").split('&') {
                        let (tech, res) = target.split_once('/').unwrap_or(("", target));
                        match tech {
                            "PJSIP" => {
                                let d = match res.split_once('@') {
                                    Some((num, ep)) => Dialed {
                                        endpoint: ep.to_owned(),
                                        number: Some(num.to_owned()),
                                    },
                                    None => Dialed {
                                        endpoint: res.to_owned(),
                                        number: None,
                                    },
                                };
                                out.dialed.push(d.clone());
                                reached.push(d);
                            }
                            "Local" => {
                                let (num, ctx) = res.split_once('@').unwrap_or((res, "default"));
                                let ctx = ctx.split('/').next().unwrap_or(ctx);
                                if depth < 4 {
                                    let vars = ch
                                        .inherit
                                        .iter()
                                        .filter_map(|k| {
                                            ch.vars.get(k).map(|v| (k.clone(), v.clone()))
                                        })
                                        .collect();
                                    let local = Channel {
                                        context: ctx.to_owned(),
                                        exten: num.to_owned(),
                                        pc: 0,
                                        vars,
                                        inherit: ch.inherit.clone(),
                                        frames: Vec::new(),
                                    };
                                    self.run(local, out, depth + 1, steps)?;
                                }
                            }
                            other => {
                                return Err(format!("Dial technology {other:?} in {target:?}"))
                            }
                        }
                    }
                    let status = (self.dial_status)(&reached);
                    let timeout = args.get(1).cloned().unwrap_or_default();
                    if status == "NOANSWER" {
                        self.epoch += timeout.trim().parse::<i64>().unwrap_or(0);
                    }
                    self.dial_timeouts.push(timeout);
                    ch.vars.insert("DIALSTATUS".into(), status);
                }
                other => {
                    return Err(format!(
                        "application {other}() is not modelled by the double"
                    ))
                }
            }
        }
    }

    fn gosub(&self, ch: &mut Channel, data: &str) -> Result<(), String> {
        // app_stack: the label is everything before the first '(', the arguments run to the
        // last ')' and are split raw (paren-aware, quotes kept).
        let (label, args) = match data.split_once('(') {
            Some((l, rest)) => (
                l,
                split_args(rest.rfind(')').map_or(rest, |j| &rest[..j]), false),
            ),
            None => (data, Vec::new()),
        };
        let ret = (ch.context.clone(), ch.exten.clone(), ch.pc);
        self.goto(ch, label)?;
        ch.frames.push(Frame {
            ret,
            args: args
                .into_iter()
                .enumerate()
                .map(|(i, a)| (format!("ARG{}", i + 1), a))
                .collect(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_of_the_ring_groups() {
        for (e, want) in [
            ("(3 + 1) % 2", "0"),
            ("(0 + 1) % 3", "1"),
            ("03 % 2", "1"),
            ("1764806460 - 1764806400", "60"),
            ("5 <= 5", "1"),
            ("6 >= 7", "0"),
            ("\"\" = \"\"", "1"),
            ("40 < 15", "0"),
        ] {
            assert_eq!(eval_expr(e).unwrap(), want, "{e}");
        }
        assert!(eval_expr("1 % 0").is_err());
        assert_eq!(split_apps("Hangup():Set(a=b)"), ("Hangup()", "Set(a=b)"));
    }

    #[test]
    fn substitution_then_splitting() {
        let program = Program::new();
        let mut x = Executor::new(&program);
        let ch = Channel {
            context: "c".into(),
            exten: "91,globex,globex-2000".into(),
            pc: 0,
            vars: BTreeMap::new(),
            inherit: BTreeSet::new(),
            frames: Vec::new(),
        };
        let d = x.subst(&ch, "s,1(${EXTEN:1},acme)").unwrap_or_default();
        assert_eq!(d, "s,1(1,globex,globex-2000,acme)");
        assert_eq!(split_args("1,globex,globex-2000,acme", false).len(), 4);
        let f = x
            .subst(&ch, "${FILTER(0123456789*#+,${EXTEN:1})}")
            .unwrap_or_default();
        // The digits of "1,globex,globex-2000": no ',' is left to split on.
        assert_eq!(f, "12000");
        // A caller's "):" after substitution starts a substring of the filtered value.
        let ch = Channel {
            exten: "90):0:1".into(),
            ..ch
        };
        let f = x
            .subst(&ch, "${FILTER(0123456789*#+,${EXTEN:1})}")
            .unwrap_or_default();
        assert_eq!(f, "0");
        assert_eq!(substring("abc", 1, 0), "");
        assert_eq!(substring("abc", -2, i64::from(i32::MAX)), "bc");
        assert_eq!(eval_expr("\"1\" = \"1\"").as_deref(), Ok("1"));
        assert_eq!(
            eval_expr("\"CHANUNAVAIL\" != \"CHANUNAVAIL\" & \"a\" != \"b\"").as_deref(),
            Ok("0")
        );
        assert_eq!(eval_expr("3 + 1").as_deref(), Ok("4"));
        assert!(pattern_matches("_9X.", "91,globex"));
        assert!(!pattern_matches("_9X.", "9"));
        assert!(pattern_matches("_0[1-9]X.", "0441"));
        assert!(specificity("_0[1-9]X.") < specificity("_X."));
    }
}
