//! Configuration errors: every one names the file, line and column it is about.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A position in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    /// The file, as given on the command line or in an `import`.
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// An error in a Corefile or in a file it refers to.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A syntax or semantic error at a known place.
    #[error("{pos}: {msg}")]
    At {
        /// Where.
        pos: Pos,
        /// What is wrong and what is accepted.
        msg: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    /// An error at `pos`.
    pub fn at(pos: &Pos, msg: impl Into<String>) -> Self {
        ConfigError::At {
            pos: pos.clone(),
            msg: msg.into(),
        }
    }

    /// A read error for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ConfigError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
