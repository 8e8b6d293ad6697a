//! Corefile tokenizer: words, quoted strings, braces and comments, each token keeping the
//! file, line and column it came from so that every later error can point at it.

use std::path::Path;
use std::sync::Arc;

use super::error::{ConfigError, Pos};

/// One token of a Corefile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The text after quote removal and environment substitution.
    pub text: String,
    /// Where the token starts.
    pub pos: Pos,
    /// Line breaks inside the token (a quoted string may span lines).
    pub line_breaks: usize,
    /// Whether the token was quoted; a quoted `{` is not a brace.
    pub quoted: bool,
}

impl Token {
    /// True for an unquoted `{`.
    pub fn is_open(&self) -> bool {
        !self.quoted && self.text == "{"
    }

    /// True for an unquoted `}`.
    pub fn is_close(&self) -> bool {
        !self.quoted && self.text == "}"
    }

    /// The line the token ends on.
    pub fn end_line(&self) -> usize {
        self.pos.line + self.line_breaks
    }
}

/// Splits `src` (the contents of `file`) into tokens.
///
/// Rules (those of the Caddyfile that Corefiles use): tokens are separated by whitespace;
/// `#` at the start of a token starts a comment to the end of the line; `"..."` quotes with
/// `\"` and `\\` escapes; `{$VAR}` and `{%VAR%}` inside any token are replaced from the
/// environment (an unset variable becomes empty, as in CoreDNS).
pub fn tokenize(src: &str, file: &Arc<Path>) -> Result<Vec<Token>, ConfigError> {
    let mut tokens = Vec::new();
    let mut chars = src.chars().peekable();
    let (mut line, mut col) = (1usize, 1usize);

    while let Some(&c) = chars.peek() {
        if c == '\n' {
            chars.next();
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            chars.next();
            col += 1;
            continue;
        }
        if c == '#' {
            while let Some(&c) = chars.peek() {
                if c == '\n' {
                    break;
                }
                chars.next();
            }
            continue;
        }
        let pos = Pos {
            file: file.clone(),
            line,
            col,
        };
        let mut text = String::new();
        let mut line_breaks = 0;
        let quoted = c == '"';
        if quoted {
            chars.next();
            col += 1;
            let mut closed = false;
            while let Some(c) = chars.next() {
                col += 1;
                match c {
                    '\\' if matches!(chars.peek(), Some('"') | Some('\\')) => {
                        text.push(chars.next().unwrap_or('\\'));
                        col += 1;
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\n' => {
                        text.push('\n');
                        line += 1;
                        line_breaks += 1;
                        col = 1;
                    }
                    c => text.push(c),
                }
            }
            if !closed {
                return Err(ConfigError::at(&pos, "unterminated quoted string"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                text.push(c);
                chars.next();
                col += 1;
            }
        }
        let text = substitute_env(&text);
        tokens.push(Token {
            text,
            pos,
            line_breaks,
            quoted,
        });
    }
    Ok(tokens)
}

/// Replaces `{$VAR}` and `{%VAR%}` with the value of `VAR` (empty when unset).
fn substitute_env(text: &str) -> String {
    if !text.contains("{$") && !text.contains("{%") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let (open, close) = if tail.starts_with("{$") {
            ("{$", "}")
        } else if tail.starts_with("{%") {
            ("{%", "%}")
        } else {
            out.push('{');
            rest = &tail[1..];
            continue;
        };
        match tail[open.len()..].find(close) {
            Some(end) => {
                let var = &tail[open.len()..open.len() + end];
                out.push_str(&std::env::var(var).unwrap_or_default());
                rest = &tail[open.len() + end + close.len()..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<(String, usize, usize)> {
        let file: Arc<Path> = Arc::from(Path::new("Corefile"));
        tokenize(src, &file)
            .unwrap()
            .into_iter()
            .map(|t| (t.text, t.pos.line, t.pos.col))
            .collect()
    }

    #[test]
    fn words_comments_and_positions() {
        let t = toks("example.com {\n  # comment\n  hosts  # trailing\n}\n");
        assert_eq!(
            t,
            vec![
                ("example.com".into(), 1, 1),
                ("{".into(), 1, 13),
                ("hosts".into(), 3, 3),
                ("}".into(), 4, 1)
            ]
        );
    }

    #[test]
    fn quotes_and_escapes() {
        let t = toks(r#"a "b c" "d\"e" "f\\g""#);
        let texts: Vec<_> = t.into_iter().map(|t| t.0).collect();
        assert_eq!(texts, vec!["a", "b c", "d\"e", "f\\g"]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let file: Arc<Path> = Arc::from(Path::new("Corefile"));
        let err = tokenize("a \"b", &file).unwrap_err();
        assert!(err.to_string().starts_with("Corefile:1:3:"), "{err}");
    }

    #[test]
    fn environment_substitution() {
        // SAFETY-free: set_var is safe in edition 2024 only inside unsafe; use a var that exists.
        let home = std::env::var("PATH").unwrap_or_default();
        assert_eq!(substitute_env("x{$PATH}y"), format!("x{home}y"));
        assert_eq!(substitute_env("{%PATH%}"), home);
        assert_eq!(substitute_env("{$RINGDNS_SURELY_UNSET_VAR}"), "");
        assert_eq!(substitute_env("{not a var}"), "{not a var}");
        assert_eq!(substitute_env("{$OPEN"), "{$OPEN");
    }
}
