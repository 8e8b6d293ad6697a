//! The record templates of CoreDNS's `template` plugin: the subset of Go's text/template
//! that its README documents for records, parsed once when the Corefile is read.
//!
//! A template is literal text with `{{ ACTION }}` in it (`{{-` and `-}}` trim the space
//! beside them, as in Go). ACTION is one of `.Name`, `.Zone`, `.Class`, `.Type`, `.Remote`,
//! `index .Match N`, `.Group.NAME` or `index .Group "NAME"`. Anything else (pipelines,
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
    let words: Vec<&str> = action.split_whitespace().collect();
    match words.as_slice() {
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
            "{{{{ {action} }}}} is not supported by ringdns's templates (supported: .Name, .Zone, .Class, .Type, .Remote, index .Match N, .Group.NAME)"
        )),
    }
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
        for bad in [
            "{{ .Message }}",
            "{{ .Name | upper }}",
            "{{ .Name",
            "{{ parseInt .Name 10 8 }}",
        ] {
            assert!(RecordTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
