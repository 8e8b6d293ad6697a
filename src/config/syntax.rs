//! Corefile structure: `import` and snippet expansion on the token stream, then server
//! blocks made of keys and a tree of directive lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, Pos};
use super::lexer::{Token, tokenize};

/// How deep `import` may nest before we call it a loop.
const MAX_IMPORT_DEPTH: usize = 10;

/// One line of a block: a directive or option with its arguments and optional sub-block.
#[derive(Clone, Debug)]
pub struct Line {
    /// The first token (directive or option name).
    pub name: Token,
    /// The other tokens on the line.
    pub args: Vec<Token>,
    /// The lines of a `{ ... }` sub-block, if any.
    pub block: Option<Vec<Line>>,
}

/// A server block before its keys and directives are interpreted.
#[derive(Clone, Debug)]
pub struct RawBlock {
    /// The keys (`example.com:53`, `tls://.`), commas removed.
    pub keys: Vec<Token>,
    /// The directives.
    pub lines: Vec<Line>,
}

/// Reads `path` and returns its server blocks with every import done.
pub fn parse_file(path: &Path) -> Result<Vec<RawBlock>, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
    parse_str(&src, path)
}

/// Parses Corefile text as if read from `path` (imports resolve relative to its folder).
pub fn parse_str(src: &str, path: &Path) -> Result<Vec<RawBlock>, ConfigError> {
    let file: Arc<Path> = Arc::from(path);
    let tokens = tokenize(src, &file)?;
    let mut snippets = HashMap::new();
    let tokens = expand(tokens, &mut snippets, 0)?;
    blocks(&tokens)
}

/// True when `tokens[i]` starts a line.
fn starts_line(tokens: &[Token], i: usize) -> bool {
    i == 0 || tokens[i - 1].end_line() != tokens[i].pos.line || tokens[i - 1].pos.file != tokens[i].pos.file
}

/// Splices imports and removes snippet definitions, recursively.
fn expand(
    tokens: Vec<Token>,
    snippets: &mut HashMap<String, Vec<Token>>,
    depth: usize,
) -> Result<Vec<Token>, ConfigError> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut nesting = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        // A snippet definition: `(name) {` at the top level.
        if nesting == 0
            && !t.quoted
            && t.text.len() > 2
            && t.text.starts_with('(')
            && t.text.ends_with(')')
            && tokens.get(i + 1).is_some_and(Token::is_open)
        {
            let name = t.text[1..t.text.len() - 1].to_string();
            let end = matching_close(&tokens, i + 1)?;
            let body = tokens[i + 2..end].to_vec();
            snippets.insert(name, body);
            i = end + 1;
            continue;
        }
        if !t.quoted && t.text == "import" && starts_line(&tokens, i) {
            let arg = tokens
                .get(i + 1)
                .filter(|a| a.pos.line == t.end_line() && a.pos.file == t.pos.file)
                .ok_or_else(|| {
                    ConfigError::at(&t.pos, "import needs one argument: a snippet name or a file path/glob")
                })?;
            if tokens
                .get(i + 2)
                .is_some_and(|x| x.pos.line == arg.end_line() && x.pos.file == arg.pos.file)
            {
                return Err(ConfigError::at(&tokens[i + 2].pos, "import takes exactly one argument"));
            }
            if depth >= MAX_IMPORT_DEPTH {
                return Err(ConfigError::at(
                    &t.pos,
                    format!("import nested more than {MAX_IMPORT_DEPTH} deep (an import loop?)"),
                ));
            }
            let spliced = match snippets.get(&arg.text) {
                Some(body) => body.clone(),
                None => import_files(arg)?,
            };
            out.extend(expand(spliced, snippets, depth + 1)?);
            i += 2;
            continue;
        }
        if t.is_open() {
            nesting += 1;
        } else if t.is_close() {
            nesting = nesting.saturating_sub(1);
        }
        out.push(t.clone());
        i += 1;
    }
    Ok(out)
}

/// The tokens of every file matched by an import argument, in name order.
fn import_files(arg: &Token) -> Result<Vec<Token>, ConfigError> {
    let base = arg.pos.file.parent().unwrap_or(Path::new("."));
    let pattern = if Path::new(&arg.text).is_absolute() {
        PathBuf::from(&arg.text)
    } else {
        base.join(&arg.text)
    };
    let has_glob = arg.text.contains(['*', '?', '[']);
    let paths: Vec<PathBuf> = if has_glob {
        super::import::expand(&pattern).map_err(|e| ConfigError::at(&arg.pos, format!("import {:?}: {e}", arg.text)))?
    } else {
        if pattern.exists() && !pattern.is_file() {
            return Err(ConfigError::at(
                &arg.pos,
                format!("import {}: not a regular file", pattern.display()),
            ));
        }
        if !pattern.exists() {
            return Err(ConfigError::at(
                &arg.pos,
                format!(
                    "import {:?}: no snippet of that name is defined above and no file {} exists",
                    arg.text,
                    pattern.display()
                ),
            ));
        }
        vec![pattern]
    };
    let mut tokens = Vec::new();
    for path in paths {
        let src = super::import::read(&path)
            .map_err(|e| ConfigError::at(&arg.pos, format!("import {}: {e}", path.display())))?;
        let file: Arc<Path> = Arc::from(path.as_path());
        tokens.extend(tokenize(&src, &file)?);
    }
    Ok(tokens)
}

/// Index of the `}` matching the `{` at `open`.
fn matching_close(tokens: &[Token], open: usize) -> Result<usize, ConfigError> {
    // The stack of open braces lets the error point at the innermost unclosed one.
    let mut stack = Vec::new();
    for (j, t) in tokens.iter().enumerate().skip(open) {
        if t.is_open() {
            stack.push(j);
        } else if t.is_close() {
            stack.pop();
            if stack.is_empty() {
                return Ok(j);
            }
        }
    }
    let innermost = stack.last().copied().unwrap_or(open);
    Err(ConfigError::at(&tokens[innermost].pos, "this '{' is never closed"))
}

/// Groups the expanded tokens into server blocks.
fn blocks(tokens: &[Token]) -> Result<Vec<RawBlock>, ConfigError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let first = &tokens[i];
        if first.is_open() || first.is_close() {
            return Err(ConfigError::at(
                &first.pos,
                format!(
                    "unexpected '{}': expected server block keys such as \"example.com:53\"",
                    first.text
                ),
            ));
        }
        // Keys: the rest of the line, continued onto the next line after a trailing comma.
        let mut keys = Vec::new();
        loop {
            let t = &tokens[i];
            for part in t.text.split(',').filter(|p| !p.is_empty()) {
                let mut k = t.clone();
                k.text = part.to_string();
                keys.push(k);
            }
            i += 1;
            let Some(next) = tokens.get(i) else { break };
            if next.is_open() {
                break;
            }
            let same_line = next.pos.line == t.end_line() && next.pos.file == t.pos.file;
            if !same_line && !t.text.ends_with(',') {
                break;
            }
        }
        if keys.is_empty() {
            return Err(ConfigError::at(
                &first.pos,
                "a server block needs at least one key, such as \"example.com:53\"",
            ));
        }
        match tokens.get(i) {
            Some(open) if open.is_open() => {
                let end = matching_close(tokens, i)?;
                let lines = lines(&tokens[i + 1..end])?;
                out.push(RawBlock { keys, lines });
                i = end + 1;
            }
            // Caddyfile rule: a file with a single server block may omit the braces.
            _ if out.is_empty() => {
                let lines = lines(&tokens[i..])?;
                out.push(RawBlock { keys, lines });
                i = tokens.len();
            }
            Some(t) => {
                return Err(ConfigError::at(&t.pos, "expected '{' after the server block keys"));
            }
            None => {
                let last = &keys[keys.len() - 1];
                return Err(ConfigError::at(&last.pos, "expected '{' after the server block keys"));
            }
        }
    }
    Ok(out)
}

/// Parses the inside of a block into lines.
fn lines(tokens: &[Token]) -> Result<Vec<Line>, ConfigError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let name = &tokens[i];
        if name.is_open() || name.is_close() {
            return Err(ConfigError::at(&name.pos, format!("unexpected '{}'", name.text)));
        }
        let mut args = Vec::new();
        let mut block = None;
        let mut last = name;
        i += 1;
        while let Some(t) = tokens.get(i) {
            if t.pos.line != last.end_line() || t.pos.file != last.pos.file || t.is_close() {
                break;
            }
            if t.is_open() {
                let end = matching_close(tokens, i)?;
                block = Some(lines(&tokens[i + 1..end])?);
                i = end + 1;
                break;
            }
            args.push(t.clone());
            last = t;
            i += 1;
        }
        out.push(Line {
            name: name.clone(),
            args,
            block,
        });
    }
    Ok(out)
}

/// Position helper for callers that need the place of a whole line.
impl Line {
    /// Where the line starts.
    pub fn pos(&self) -> &Pos {
        &self.name.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Vec<RawBlock>, ConfigError> {
        parse_str(src, Path::new("Corefile"))
    }

    fn texts(ts: &[Token]) -> Vec<&str> {
        ts.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn blocks_keys_and_nested_lines() {
        let b = parse("example.com:1053 dns://other.org, tls://x. {\n hosts {\n  1.2.3.4 a\n  ttl 60\n }\n log\n}\n. {\n errors\n}\n").unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(
            texts(&b[0].keys),
            vec!["example.com:1053", "dns://other.org", "tls://x."]
        );
        assert_eq!(b[0].lines.len(), 2);
        let hosts = &b[0].lines[0];
        assert_eq!(hosts.name.text, "hosts");
        let inner = hosts.block.as_ref().unwrap();
        assert_eq!(inner[0].name.text, "1.2.3.4");
        assert_eq!(texts(&inner[0].args), vec!["a"]);
        assert_eq!(inner[1].name.text, "ttl");
        assert_eq!(b[1].lines[0].name.text, "errors");
    }

    #[test]
    fn keys_continue_after_trailing_comma() {
        let b = parse("a.com,\nb.com {\n}\n").unwrap();
        assert_eq!(texts(&b[0].keys), vec!["a.com", "b.com"]);
    }

    #[test]
    fn keys_of_commas_only_are_an_error() {
        let err = parse(",,").unwrap_err().to_string();
        assert!(
            err.starts_with("Corefile:1:1:") && err.contains("at least one key"),
            "{err}"
        );
        assert!(parse(", {\n}\n").is_err());
    }

    #[test]
    fn single_block_without_braces() {
        let b = parse("example.com\nhosts\nlog\n").unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].lines.len(), 2);
    }

    #[test]
    fn snippets_are_spliced() {
        let b = parse("(common) {\n log\n errors\n}\nexample.com {\n import common\n hosts\n}\n").unwrap();
        assert_eq!(b.len(), 1);
        let names: Vec<_> = b[0].lines.iter().map(|l| l.name.text.as_str()).collect();
        assert_eq!(names, vec!["log", "errors", "hosts"]);
    }

    #[test]
    fn unclosed_brace_names_its_position() {
        let err = parse("example.com {\n hosts {\n").unwrap_err().to_string();
        assert!(err.starts_with("Corefile:2:8:"), "{err}");
    }

    #[test]
    fn missing_import_is_an_error() {
        let err = parse("example.com {\n import nothing-here.conf\n}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Corefile:2:9:") && err.contains("nothing-here.conf"),
            "{err}"
        );
    }

    #[test]
    fn self_import_loop_is_bounded() {
        let dir = std::env::temp_dir().join(format!("ringdns-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("loop.conf");
        std::fs::write(&f, "import loop.conf\n").unwrap();
        let err = parse_file(&f).unwrap_err().to_string();
        assert!(err.contains("nested more than"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn glob_import_of_blocks() {
        let dir = std::env::temp_dir().join(format!("ringdns-glob-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        std::fs::write(dir.join("zones/a.conf"), "a.test {\n log\n}\n").unwrap();
        std::fs::write(dir.join("zones/b.conf"), "b.test {\n errors\n}\n").unwrap();
        std::fs::write(dir.join("Corefile"), "import zones/*.conf\n").unwrap();
        let b = parse_file(&dir.join("Corefile")).unwrap();
        assert_eq!(b.len(), 2);
        assert!(b[1].keys[0].pos.file.ends_with("zones/b.conf"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
