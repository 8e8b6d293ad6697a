//! CoreDNS's `rewrite`: one rule per directive, read as its `setup.go` reads it. The line's
//! words, or (with fewer than two) the words of its `{ }` block in order, make one rule:
//!
//! ```text
//! rewrite [continue|stop] name [exact|prefix|suffix|substring|regex] FROM TO [answer auto | answer name|value FROM TO]...
//! rewrite [continue|stop] type FROM TO
//! rewrite [continue|stop] class FROM TO
//! rewrite [continue|stop] ttl [exact|prefix|suffix|substring|regex] NAME SECONDS|MIN-MAX
//! rewrite [continue|stop] rcode [exact|prefix|suffix|substring|regex] NAME FROM TO
//! ```
//!
//! Names are matched as CoreDNS matches them: the query name in lowercase presentation
//! form with its final dot; every non-regex FROM and TO is lowercased and given a final dot
//! (Go's `plugin.Name.Normalize`). `edns0` and `cname` rules are refused by name: ringdns
//! sends upstream none of a client's EDNS options (see the README), and a CNAME rewrite
//! would re-resolve inside the reply.

use domain::base::iana::{Class, Rtype};
use regex::Regex;

use super::args::err;
use super::error::ConfigError;
use super::lexer::Token;
use super::syntax::Line;

/// Longest regex accepted (CoreDNS's `maxRegexpLen`, against patterns that take a lot of
/// memory to compile).
const MAX_REGEX_LEN: usize = 10_000;
/// The largest TTL of an open range (`30-`), RFC 2181 §8.
const MAX_TTL: u32 = 2_147_483_647;
/// The largest rcode a rule may name (CoreDNS: BADCOOKIE, 23).
const MAX_RCODE: u16 = 23;

/// The rcode names CoreDNS accepts (miekg/dns's `StringToRcode`; 16 has two).
const RCODES: &[(&str, u16)] = &[
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
    ("BADSIG", 16),
    ("BADVERS", 16),
    ("BADKEY", 17),
    ("BADTIME", 18),
    ("BADMODE", 19),
    ("BADNAME", 20),
    ("BADALG", 21),
    ("BADTRUNC", 22),
    ("BADCOOKIE", 23),
];

/// One `rewrite` directive.
#[derive(Clone, Debug)]
pub struct RewriteRule {
    /// `stop` (the default): no later rule is tried once this one applied.
    pub stop: bool,
    /// What it matches and changes.
    pub kind: RuleKind,
}

/// What a rule changes.
#[derive(Clone, Debug)]
pub enum RuleKind {
    /// The query name; the reply's names are mapped back by `reverts`.
    Name {
        /// How the name is matched and rewritten.
        matcher: NameMatch,
        /// The new name, or (regex) its template with `{N}` groups.
        to: String,
        /// `answer auto` (always on for exact): names in the reply that carry the new name
        /// get the old one back.
        auto: bool,
        /// `answer name|value FROM TO` rules, in order.
        answers: Vec<Revert>,
    },
    /// The query type.
    Type {
        /// Matched type.
        from: Rtype,
        /// Its replacement.
        to: Rtype,
    },
    /// The query class.
    Class {
        /// Matched class.
        from: Class,
        /// Its replacement.
        to: Class,
    },
    /// The TTLs of every record in the reply, brought into `min..=max`.
    Ttl {
        /// Which query names.
        matcher: NameMatch,
        /// Lower bound.
        min: u32,
        /// Upper bound.
        max: u32,
    },
    /// The reply's rcode `from` becomes `to`.
    Rcode {
        /// Which query names.
        matcher: NameMatch,
        /// Matched rcode.
        from: u16,
        /// Its replacement.
        to: u16,
    },
}

/// How a rule matches the query name (lowercase, with its final dot).
#[derive(Clone, Debug)]
pub enum NameMatch {
    /// The whole name.
    Exact(String),
    /// The name starts with this.
    Prefix(String),
    /// The name ends with this.
    Suffix(String),
    /// The name contains this.
    Substring(String),
    /// The regex matches somewhere in the name.
    Regex(Regex),
}

/// A rewrite of names in the reply.
#[derive(Clone, Debug)]
pub enum Revert {
    /// Owner names (`answer name`).
    Owner(Mapper),
    /// Names in record data: CNAME, DNAME, NS, PTR, MX, SRV, NAPTR, SOA's MNAME
    /// (`answer value`, as CoreDNS's list).
    Value(Mapper),
}

/// How a name in the reply is rewritten.
#[derive(Clone, Debug)]
pub enum Mapper {
    /// When the regex matches, the template with `{N}` replaced by its groups.
    Regex(Regex, String),
    /// A name ending with the first gets the second instead of that ending.
    Suffix(String, String),
}

impl NameMatch {
    /// Whether `name` (lowercase presentation with its final dot) matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Exact(s) => name == s,
            NameMatch::Prefix(s) => name.starts_with(s.as_str()),
            NameMatch::Suffix(s) => name.ends_with(s.as_str()),
            NameMatch::Substring(s) => name.contains(s.as_str()),
            NameMatch::Regex(r) => r.is_match(name),
        }
    }
}

/// `{N}` in `template` replaced by group N of `caps` (Go's loop over the groups, so a
/// group that did not take part is the empty string).
pub fn expand(template: &str, caps: &regex::Captures<'_>) -> String {
    let mut s = template.to_string();
    for i in 0..caps.len() {
        let v = caps.get(i).map_or("", |m| m.as_str());
        s = s.replace(&format!("{{{i}}}"), v);
    }
    s
}

impl Mapper {
    /// `name` rewritten, or `None` when the mapper does not apply.
    pub fn apply(&self, name: &str) -> Option<String> {
        match self {
            Mapper::Regex(re, to) => re.captures(name).map(|c| expand(to, &c)),
            Mapper::Suffix(from, to) => name.strip_suffix(from.as_str()).map(|b| format!("{b}{to}")),
        }
    }
}

/// Go's `plugin.Name(s).Normalize()`: lowercase, with a final dot.
fn normalize(s: &str) -> String {
    let mut n = s.to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

/// Reads one `rewrite` directive.
pub fn rewrite(line: &Line) -> Result<RewriteRule, ConfigError> {
    let mut words: Vec<&Token> = line.args.iter().collect();
    if words.len() < 2 {
        for l in line.block.iter().flatten() {
            words.push(&l.name);
            words.extend(&l.args);
        }
    } else if let Some(l) = line.block.as_ref().and_then(|b| b.first()) {
        return Err(err(&l.name, "rewrite: a rule on the line takes no { } block"));
    }
    let Some(first) = words.first().copied() else {
        return Err(err(
            &line.name,
            "rewrite needs a rule (for example: rewrite name a.example. b.example.)",
        ));
    };
    let (stop, rest) = match first.text.to_ascii_lowercase().as_str() {
        "stop" => (true, &words[1..]),
        "continue" => (false, &words[1..]),
        _ => (true, &words[..]),
    };
    let Some((field, args)) = rest.split_first() else {
        return Err(err(first, format!("rewrite {}: a rule type must follow", first.text)));
    };
    let kind = match field.text.to_ascii_lowercase().as_str() {
        "name" => name_rule(field, args)?,
        "type" => {
            let [from, to] = two(field, args)?;
            RuleKind::Type {
                from: rtype(from)?,
                to: rtype(to)?,
            }
        }
        "class" => {
            let [from, to] = two(field, args)?;
            RuleKind::Class {
                from: class(from)?,
                to: class(to)?,
            }
        }
        "ttl" => ttl_rule(field, args)?,
        "rcode" => rcode_rule(field, args)?,
        "answer" => return Err(err(field, "rewrite: response rewrites must begin with a name rule")),
        f @ ("edns0" | "cname") => {
            return Err(err(
                field,
                format!("rewrite {f} is not available in ringdns (supported: name, type, class, ttl, rcode)"),
            ));
        }
        other => {
            return Err(err(
                field,
                format!("rewrite: invalid rule type {other:?} (accepted: name, type, class, ttl, rcode)"),
            ));
        }
    };
    Ok(RewriteRule { stop, kind })
}

fn two<'a>(field: &Token, args: &[&'a Token]) -> Result<[&'a Token; 2], ConfigError> {
    match args {
        [a, b] => Ok([a, b]),
        _ => Err(err(
            field,
            format!("rewrite {} rules must have exactly two arguments", field.text),
        )),
    }
}

fn rtype(t: &Token) -> Result<Rtype, ConfigError> {
    t.text
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| err(t, format!("rewrite: invalid type {:?}", t.text)))
}

fn class(t: &Token) -> Result<Class, ConfigError> {
    t.text
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| err(t, format!("rewrite: invalid class {:?}", t.text)))
}

fn regex(t: &Token) -> Result<Regex, ConfigError> {
    if t.text.len() > MAX_REGEX_LEN {
        return Err(err(
            t,
            format!("rewrite: a regex may have at most {MAX_REGEX_LEN} characters"),
        ));
    }
    Regex::new(&t.text).map_err(|e| err(t, format!("rewrite: invalid regex {:?}: {e}", t.text)))
}

/// A regex and the template its groups fill: the template may use no group the regex lacks.
fn regex_pair(from: &Token, to: &Token) -> Result<(Regex, String), ConfigError> {
    let re = regex(from)?;
    let used = (0..=100).filter(|i| to.text.contains(&format!("{{{i}}}"))).count();
    if used > re.captures_len() - 1 {
        return Err(err(
            to,
            format!(
                "rewrite: {:?} uses more groups than the regex {:?} has",
                to.text, from.text
            ),
        ));
    }
    Ok((re, normalize(&to.text)))
}

/// MATCH-TYPE NAME, with the type optional (`exact`) when `n` words remain after it.
fn matcher<'a, 'b>(
    field: &Token,
    args: &'b [&'a Token],
    n: usize,
) -> Result<(NameMatch, &'b [&'a Token]), ConfigError> {
    if args.len() == n + 1 {
        return Ok((NameMatch::Exact(normalize(&args[0].text)), &args[1..]));
    }
    if args.len() != n + 2 {
        return Err(err(field, format!("rewrite {}: wrong number of arguments", field.text)));
    }
    let (t, name) = (args[0], args[1]);
    let m = match t.text.to_ascii_lowercase().as_str() {
        "exact" => NameMatch::Exact(normalize(&name.text)),
        "prefix" => NameMatch::Prefix(normalize(&name.text)),
        "suffix" => NameMatch::Suffix(normalize(&name.text)),
        "substring" => NameMatch::Substring(normalize(&name.text)),
        "regex" => NameMatch::Regex(regex(name)?),
        other => {
            return Err(err(
                t,
                format!(
                    "rewrite {}: unknown match type {other:?} (accepted: exact, prefix, suffix, substring, regex)",
                    field.text
                ),
            ));
        }
    };
    Ok((m, &args[2..]))
}

fn ttl_rule(field: &Token, args: &[&Token]) -> Result<RuleKind, ConfigError> {
    let (matcher, rest) = matcher(field, args, 1)?;
    let t = rest[0];
    let bad = || {
        err(
            t,
            format!("rewrite ttl: invalid TTL {:?} (SECONDS, MIN-MAX, -MAX or MIN-)", t.text),
        )
    };
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let (min, max) = match t.text.split_once('-') {
        None => {
            let v = num(&t.text)?;
            (v, v)
        }
        Some(("", "")) => return Err(bad()),
        Some((lo, hi)) => (
            if lo.is_empty() { 0 } else { num(lo)? },
            if hi.is_empty() { MAX_TTL } else { num(hi)? },
        ),
    };
    if min > max {
        return Err(bad());
    }
    Ok(RuleKind::Ttl { matcher, min, max })
}

fn rcode_rule(field: &Token, args: &[&Token]) -> Result<RuleKind, ConfigError> {
    let (matcher, rest) = matcher(field, args, 2)?;
    let code = |t: &Token| -> Result<u16, ConfigError> {
        if let Ok(n) = t.text.parse::<u16>() {
            if n <= MAX_RCODE {
                return Ok(n);
            }
        }
        let up = t.text.to_ascii_uppercase();
        RCODES
            .iter()
            .find(|(name, _)| *name == up)
            .map(|(_, n)| *n)
            .ok_or_else(|| err(t, format!("rewrite rcode: invalid rcode {:?}", t.text)))
    };
    Ok(RuleKind::Rcode {
        matcher,
        from: code(rest[0])?,
        to: code(rest[1])?,
    })
}

fn name_rule(field: &Token, args: &[&Token]) -> Result<RuleKind, ConfigError> {
    let (kind, from, to, options) = match args {
        [from, to] => ("exact".to_string(), *from, *to, &[][..]),
        [kind, from, to, options @ ..] => (kind.text.to_ascii_lowercase(), *from, *to, options),
        _ => return Err(err(field, "rewrite name: too few arguments (FROM TO)")),
    };
    let (auto, answers) = answer_rules(options)?;
    let (matcher, to_text, auto) = match kind.as_str() {
        "exact" => (NameMatch::Exact(normalize(&from.text)), normalize(&to.text), true),
        "prefix" => (NameMatch::Prefix(normalize(&from.text)), normalize(&to.text), auto),
        "substring" => (NameMatch::Substring(normalize(&from.text)), normalize(&to.text), auto),
        "suffix" => (NameMatch::Suffix(normalize(&from.text)), normalize(&to.text), auto),
        "regex" => {
            let (re, to) = regex_pair(from, to)?;
            (NameMatch::Regex(re), to, auto)
        }
        other => {
            return Err(err(
                args[0],
                format!(
                    "rewrite name: unknown match type {other:?} (accepted: exact, prefix, suffix, substring, regex)"
                ),
            ));
        }
    };
    let mut answers = answers;
    if let (NameMatch::Suffix(suffix), true) = (&matcher, auto) {
        // CoreDNS: a suffix rule's `auto` maps the new suffix back to the old one, owners
        // and values alike, before the explicit answer rules.
        let back = Mapper::Suffix(to_text.clone(), suffix.clone());
        answers.insert(0, Revert::Value(back.clone()));
        answers.insert(0, Revert::Owner(back));
        return Ok(RuleKind::Name {
            matcher,
            to: to_text,
            auto: false,
            answers,
        });
    }
    Ok(RuleKind::Name {
        matcher,
        to: to_text,
        auto,
        answers,
    })
}

/// `answer auto`, `answer name FROM TO`, `answer value FROM TO`; after the first, the word
/// `answer` may be left out.
fn answer_rules(words: &[&Token]) -> Result<(bool, Vec<Revert>), ConfigError> {
    let mut auto = false;
    let mut rules = Vec::new();
    let mut owners = 0;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w.text == "answer" {
            i += 1;
        } else if i == 0 {
            return Err(err(w, format!("rewrite name: {:?}: expected answer", w.text)));
        }
        let Some(kind) = words.get(i) else {
            return Err(err(w, "rewrite name: answer needs auto, name or value"));
        };
        i += 1;
        match kind.text.as_str() {
            "auto" => auto = true,
            k @ ("name" | "value") => {
                let (Some(from), Some(to)) = (words.get(i), words.get(i + 1)) else {
                    return Err(err(kind, format!("rewrite name: answer {k} needs FROM and TO")));
                };
                let (re, to) = regex_pair(from, to)?;
                let m = Mapper::Regex(re, to);
                rules.push(if k == "name" {
                    owners += 1;
                    Revert::Owner(m)
                } else {
                    Revert::Value(m)
                });
                i += 2;
            }
            other => {
                return Err(err(
                    kind,
                    format!("rewrite name: invalid answer rule {other:?} (accepted: auto, name, value)"),
                ));
            }
        }
    }
    if auto && owners > 0 {
        return Err(err(
            words[0],
            "rewrite name: answer auto cannot be combined with answer name rules",
        ));
    }
    Ok((auto, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Result<RewriteRule, String> {
        let corefile = format!(". {{\n {text}\n}}\n");
        let path = std::path::Path::new("Corefile");
        let c = crate::config::parse(&corefile, path, Default::default()).map_err(|e| e.to_string())?;
        Ok(c.blocks[0].rewrites[0].clone())
    }

    #[test]
    fn forms_of_the_readme() {
        let r = rule("rewrite name example.net example.org").unwrap();
        assert!(r.stop);
        assert!(
            matches!(r.kind, RuleKind::Name { matcher: NameMatch::Exact(ref f), ref to, auto: true, .. }
            if f == "example.net." && to == "example.org.")
        );
        let r = rule("rewrite continue name substring service.us-west-1.example.org service.us-west-1.consul").unwrap();
        assert!(!r.stop);
        let r = rule("rewrite stop {\n name regex (.*)-(us-west-1)\\.coredns\\.rocks {1}.service.{2}.consul\n answer name (.*)\\.service\\.(us-west-1)\\.consul {1}-{2}.coredns.rocks\n }").unwrap();
        let RuleKind::Name {
            matcher: NameMatch::Regex(re),
            to,
            auto,
            answers,
        } = r.kind
        else {
            panic!("not a name rule")
        };
        assert!(re.is_match("ftp-us-west-1.coredns.rocks."));
        assert_eq!(to, "{1}.service.{2}.consul.");
        assert!(!auto);
        assert!(matches!(answers.as_slice(), [Revert::Owner(_)]));
        let r = rule("rewrite stop {\n name suffix .coredns.rocks .service.consul answer auto\n }").unwrap();
        assert!(matches!(r.kind, RuleKind::Name { ref answers, .. } if answers.len() == 2));
        let r = rule(
            "rewrite name suffix .arpa .arpa answer auto answer value (.*)\\.service\\.consul\\. {1}.coredns.rocks.",
        )
        .unwrap();
        assert!(matches!(r.kind, RuleKind::Name { ref answers, .. } if answers.len() == 3));
        for (text, min, max) in [
            ("rewrite ttl example.com. 30-300", 30, 300),
            ("rewrite ttl example.com. -30", 0, 30),
            ("rewrite ttl example.com. 30-", 30, MAX_TTL),
            ("rewrite ttl example.com. 30", 30, 30),
            ("rewrite continue {\n ttl regex (.*)\\.coredns\\.rocks 15\n }", 15, 15),
        ] {
            let r = rule(text).unwrap();
            assert!(
                matches!(r.kind, RuleKind::Ttl { min: a, max: b, .. } if a == min && b == max),
                "{text}"
            );
        }
        let r = rule("rewrite continue {\n rcode regex (.*)\\.coredns\\.rocks SERVFAIL NOERROR\n }").unwrap();
        assert!(matches!(r.kind, RuleKind::Rcode { from: 2, to: 0, .. }));
        let r = rule("rewrite rcode regex (.*)\\.coredns\\.rocks 2 0").unwrap();
        assert!(matches!(r.kind, RuleKind::Rcode { from: 2, to: 0, .. }));
        let r = rule("rewrite type ANY HINFO").unwrap();
        assert!(matches!(
            r.kind,
            RuleKind::Type {
                from: Rtype::ANY,
                to: Rtype::HINFO
            }
        ));
        let r = rule("rewrite class CH IN").unwrap();
        assert!(matches!(
            r.kind,
            RuleKind::Class {
                from: Class::CH,
                to: Class::IN
            }
        ));
    }

    #[test]
    fn errors_name_the_word() {
        for (text, want) in [
            ("rewrite", "needs a rule"),
            ("rewrite stop", "a rule type must follow"),
            ("rewrite answer auto", "must begin with a name rule"),
            ("rewrite edns0 local set 0xffee abcd", "not available in ringdns"),
            ("rewrite cname exact a. b.", "not available in ringdns"),
            ("rewrite bogus a b", "invalid rule type"),
            ("rewrite name a", "too few arguments"),
            ("rewrite name fuzzy a b", "unknown match type"),
            ("rewrite name regex ( b", "invalid regex"),
            ("rewrite name regex (a) {1}.{2}", "more groups"),
            (
                "rewrite name regex (a) b answer auto answer name (x) y",
                "cannot be combined",
            ),
            ("rewrite name regex (a) b answer fuzzy", "invalid answer rule"),
            ("rewrite name regex (a) b answer name (x)", "needs FROM and TO"),
            ("rewrite name regex (a) b extra", "expected answer"),
            ("rewrite type A", "exactly two arguments"),
            ("rewrite type A NOPE", "invalid type"),
            ("rewrite class XX IN", "invalid class"),
            ("rewrite ttl a. 30-10", "invalid TTL"),
            ("rewrite ttl a. -", "invalid TTL"),
            ("rewrite ttl a. x", "invalid TTL"),
            ("rewrite ttl fuzzy a. 10", "unknown match type"),
            ("rewrite rcode a. MAYBE 0", "invalid rcode"),
            ("rewrite rcode a. 99 0", "invalid rcode"),
        ] {
            let e = rule(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("Corefile:2:"), "{text}: {e}");
        }
    }
}
