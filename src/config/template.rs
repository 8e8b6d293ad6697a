//! The record templates of CoreDNS's `template` plugin: the subset of Go's text/template
//! that its README documents for records, parsed once when the Corefile is read.
//!
//! A template is literal text with `{{ ACTION }}` in it (`{{-` and `-}}` trim the space
//! beside them, as in Go). ACTION is one of `.Name`, `.Zone`, `.Class`, `.Type`, `.Remote`,
//! `index .Match N`, `.Group.NAME`, `index .Group "NAME"`, `.Question.Name`,
//! `.Question.Qtype`, `.Question.Qclass`, or the README's function `parseInt ARG BASE BITS`
//! (ARG one of those, in parentheses when it has words). Anything else (pipelines, other
//! functions, `.Message`, `.Meta`, `.Var`) is refused when the Corefile is read, naming it.

/// A parsed record template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordTemplate {
    /// The text as written.
    pub source: String,
    /// Its pieces, in order.
    pub pieces: Vec<Piece>,
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text copied as it is.
    Literal(String),
    /// `.Name`: the query name, lowercase, with its final dot.
    Name,
    /// `.Zone`: the template's zone that holds the name.
    Zone,
    /// `.Class`: the query class (`IN`).
    Class,
    /// `.Type`: the query type (`A`).
    Type,
    /// `.Remote`: the client's IP address.
    Remote,
    /// `index .Match N`: the N-th capture group of the regex (0: the whole match).
    Match(usize),
    /// `.Group.NAME` or `index .Group "NAME"`: a named capture group.
    Group(String),
    /// `.Question.Qtype` and `.Question.Qclass`: the numbers (Go prints the `uint16`s).
    QtypeNumber,
    /// See [`Piece::QtypeNumber`].
    QclassNumber,
    /// `parseInt ARG BASE BITS`: ARG read as an unsigned number in BASE (0: by its prefix)
    /// that fits BITS bits, written in decimal (Go's `strconv.ParseUint`); a failure fails
    /// the template.
    ParseInt {
        /// What is read.
        arg: Box<Piece>,
        /// 0 or 2 to 36.
        base: u32,
        /// 0 (64) to 64.
        bits: u32,
    },
}

impl RecordTemplate {
    /// Parses `source`; the error says which action is not supported.
    pub fn parse(source: &str) -> Result<RecordTemplate, String> {
        let mut pieces = Vec::new();
        let mut rest = source;
        let mut literal = String::new();
        while let Some(open) = rest.find("{{") {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("template {source:?}: \"{{{{\" without \"}}}}\""))?;
            let mut action = &after[..close];
            if let Some(a) = action.strip_prefix('-') {
                action = a;
                literal.truncate(literal.trim_end().len());
            }
            let mut trim_after = false;
            if let Some(a) = action.strip_suffix('-') {
                action = a;
                trim_after = true;
            }
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(action_piece(action.trim()).map_err(|e| format!("template {source:?}: {e}"))?);
            rest = &after[close + 2..];
            if trim_after {
                rest = rest.trim_start();
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(RecordTemplate {
            source: source.to_string(),
            pieces,
        })
    }
}

fn action_piece(action: &str) -> Result<Piece, String> {
    if let Some(rest) = action.strip_prefix("parseInt ") {
        return parse_int(rest.trim());
    }
    let words: Vec<&str> = action.split_whitespace().collect();
    match words.as_slice() {
        // `.Question.Name` is the name as asked, which `.Name` is too (lowercased by
        // CoreDNS's request before it reaches the template).
        [".Question.Name"] => Ok(Piece::Name),
        [".Question.Qtype"] => Ok(Piece::QtypeNumber),
        [".Question.Qclass"] => Ok(Piece::QclassNumber),
        [".Name"] => Ok(Piece::Name),
        [".Zone"] => Ok(Piece::Zone),
        [".Class"] => Ok(Piece::Class),
        [".Type"] => Ok(Piece::Type),
        [".Remote"] => Ok(Piece::Remote),
        ["index", ".Match", n] => n
            .parse()
            .map(Piece::Match)
            .map_err(|_| format!("index .Match {n}: not a group number")),
        ["index", ".Group", name] => Ok(Piece::Group(name.trim_matches('"').to_string())),
        [g] if g.starts_with(".Group.") && g.len() > ".Group.".len() => {
            Ok(Piece::Group(g[".Group.".len()..].to_string()))
        }
        _ => Err(format!(
            "{{{{ {action} }}}} is not supported by ringdns's templates (supported: .Name, .Zone, .Class, .Type, .Remote, index .Match N, .Group.NAME, .Question.Name|Qtype|Qclass, parseInt ARG BASE BITS)"
        )),
    }
}

/// `parseInt`'s arguments: `ARG BASE BITS`, ARG a one-word action or one in parentheses.
fn parse_int(rest: &str) -> Result<Piece, String> {
    let (arg, tail) = match rest.strip_prefix('(') {
        Some(inner) => {
            let close = inner
                .find(')')
                .ok_or_else(|| format!("parseInt {rest}: \"(\" without \")\""))?;
            (&inner[..close], &inner[close + 1..])
        }
        None => rest.split_once(char::is_whitespace).unwrap_or((rest, "")),
    };
    let arg = action_piece(arg.trim())?;
    if matches!(arg, Piece::ParseInt { .. }) {
        return Err("parseInt of parseInt is not supported".into());
    }
    let nums: Vec<&str> = tail.split_whitespace().collect();
    let [base, bits] = nums.as_slice() else {
        return Err(format!("parseInt {rest}: needs ARG BASE BITS"));
    };
    let base: u32 = base
        .parse()
        .ok()
        .filter(|b| *b == 0 || (2..=36).contains(b))
        .ok_or_else(|| format!("parseInt: base {base:?} is not 0 or 2 to 36"))?;
    let bits: u32 = bits
        .parse()
        .ok()
        .filter(|b| *b <= 64)
        .ok_or_else(|| format!("parseInt: bit size {bits:?} is not 0 to 64"))?;
    Ok(Piece::ParseInt {
        arg: Box::new(arg),
        base,
        bits,
    })
}

/// Go's `strconv.ParseUint(s, base, bits)`.
pub fn parse_uint(s: &str, base: u32, bits: u32) -> Result<u64, String> {
    let bad = || format!("parseInt: {s:?} is not a number in base {base} of {bits} bits");
    let (digits, radix) = match base {
        0 => {
            let lower = s.to_ascii_lowercase();
            if let Some(h) = lower.strip_prefix("0x") {
                (h.to_string(), 16)
            } else if let Some(b) = lower.strip_prefix("0b") {
                (b.to_string(), 2)
            } else if let Some(o) = lower.strip_prefix("0o") {
                (o.to_string(), 8)
            } else if lower.len() > 1 && lower.starts_with('0') {
                (lower[1..].to_string(), 8)
            } else {
                (lower, 10)
            }
        }
        b => (s.to_string(), b),
    };
    // Go takes underscores only with base 0, and no sign at all.
    let digits = if base == 0 { digits.replace('_', "") } else { digits };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(bad());
    }
    let v = u64::from_str_radix(&digits, radix).map_err(|_| bad())?;
    let bits = if bits == 0 { 64 } else { bits };
    if bits < 64 && v >> bits != 0 {
        return Err(bad());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_trimming() {
        let t = RecordTemplate::parse("{{ .Name }} 60 IN A {{index .Match 1}}.{{ .Group.b }}").unwrap();
        assert_eq!(
            t.pieces,
            vec![
                Piece::Name,
                Piece::Literal(" 60 IN A ".into()),
                Piece::Match(1),
                Piece::Literal(".".into()),
                Piece::Group("b".into()),
            ]
        );
        let t = RecordTemplate::parse("a  {{- .Zone -}}  b {{ index .Group \"x\" }}").unwrap();
        assert_eq!(
            t.pieces,
            vec![
                Piece::Literal("a".into()),
                Piece::Zone,
                Piece::Literal("b ".into()),
                Piece::Group("x".into())
            ]
        );
        let t = RecordTemplate::parse(
            "{{ parseInt .Group.b 16 8 }} {{ parseInt (index .Match 1) 0 0 }} {{ .Question.Qtype }}",
        )
        .unwrap();
        assert_eq!(
            t.pieces[0],
            Piece::ParseInt {
                arg: Box::new(Piece::Group("b".into())),
                base: 16,
                bits: 8
            }
        );
        assert!(matches!(&t.pieces[2], Piece::ParseInt { arg, base: 0, bits: 0 } if **arg == Piece::Match(1)));
        assert_eq!(t.pieces[4], Piece::QtypeNumber);
        for (s, base, bits, want) in [
            ("7b", 16, 8, Ok(123)),
            ("ff", 16, 8, Ok(255)),
            ("100", 16, 8, Err(())),
            ("0x1F", 0, 0, Ok(31)),
            ("017", 0, 0, Ok(15)),
            ("0b101", 0, 0, Ok(5)),
            ("1_000", 0, 16, Ok(1000)),
            ("1_000", 10, 16, Err(())),
            ("+5", 10, 8, Err(())),
            ("", 10, 8, Err(())),
            ("z", 36, 64, Ok(35)),
        ] {
            assert_eq!(parse_uint(s, base, bits).map_err(|_| ()), want, "{s} {base} {bits}");
        }
        for bad in [
            "{{ parseInt .Name 1 8 }}",
            "{{ parseInt .Name 10 65 }}",
            "{{ parseInt .Name 10 }}",
            "{{ parseInt (index .Match 1 10 8 }}",
            "{{ .Message }}",
            "{{ .Name | upper }}",
            "{{ .Name",
            "{{ printf \"%s\" .Name }}",
        ] {
            assert!(RecordTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
