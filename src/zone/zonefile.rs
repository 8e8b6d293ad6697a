//! Loading RFC 1035 zone files (through domain's zone file parser) into a [`Zone`].
//!
//! `$ORIGIN`, `$TTL` and `$INCLUDE` are handled; `$INCLUDE` paths are relative to the
//! including file's folder and may nest up to [`MAX_INCLUDE_DEPTH`] deep.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use domain::base::iana::Class;
use domain::base::name::Name;
use domain::base::rdata::ComposeRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};

use super::name::NameKey;
use super::store::{Zone, ZoneBuilder, ZoneError};

/// How deep `$INCLUDE` may nest.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// Why a zone file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A syntax error (domain reports `line:col: what`).
    #[error("{path}:{detail}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// `line:col: message`.
        detail: String,
    },
    /// A record of a class other than IN.
    #[error("{path}: record {owner} has class {class}; only IN is served")]
    Class {
        /// The file.
        path: PathBuf,
        /// The owner.
        owner: String,
        /// Its class.
        class: String,
    },
    /// `$INCLUDE` nested too deep.
    #[error("{path}: $INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep (an include loop?)")]
    IncludeDepth {
        /// The file with the include.
        path: PathBuf,
    },
    /// The data does not make a valid zone.
    #[error("{path}: zone {zone}: {source}")]
    Zone {
        /// The file.
        path: PathBuf,
        /// The zone.
        zone: String,
        /// What is wrong.
        source: ZoneError,
    },
}

/// Loads `path` as the zone `origin`.
pub fn load(path: &Path, origin: &Name<Bytes>) -> Result<Zone, LoadError> {
    let (zf, lines) = read(path)?;
    build(zf, lines, path, origin, &|err| locate_in_file(path, err))
}

/// Loads zone file text as if read from `path` (`$INCLUDE` resolves relative to it).
pub fn load_bytes(bytes: &[u8], path: &Path, origin: &Name<Bytes>) -> Result<Zone, LoadError> {
    build(Zonefile::from(bytes), line_count(bytes), path, origin, &|err| {
        locate(bytes, err)
    })
}

/// Reads a zone file straight into the parser's buffer: going through a `Vec` first would
/// touch the file's size in fresh memory twice, and on a VM clearing fresh pages is the
/// larger part of loading a big zone. Also counts the lines, to size the index.
fn read(path: &Path) -> Result<(Zonefile, usize), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut zf = Zonefile::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut chunk = vec![0; 64 * 1024];
    let mut lines = 0;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => return Ok((zf, lines)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        lines += line_count(&chunk[..n]);
        zf.extend_from_slice(&chunk[..n]);
    }
}

fn line_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

fn build(
    zf: Zonefile,
    lines: usize,
    path: &Path,
    origin: &Name<Bytes>,
    locate: &dyn Fn(&str) -> String,
) -> Result<Zone, LoadError> {
    let apex = NameKey::of(origin);
    let mut builder = ZoneBuilder::new(apex.as_slice());
    // One name per line at most: sizing the index up front spares the rehashes of a growing
    // table and the page faults of each bigger copy (the larger part of loading 1M names).
    // `build` gives back what a zone with several records per name did not use.
    builder.reserve(lines);
    parse_into(zf, path, origin.clone(), &mut builder, 0, locate)?;
    let (zone, notes) = builder.build().map_err(|source| LoadError::Zone {
        path: path.to_path_buf(),
        zone: format!("{origin}."),
        source,
    })?;
    if notes.out_of_zone > 0 {
        tracing::warn!(file = %path.display(), zone = %origin, skipped = notes.out_of_zone, "records outside the zone were skipped");
    }
    if notes.ttl_mismatches > 0 {
        tracing::warn!(file = %path.display(), zone = %origin, rrsets = notes.ttl_mismatches, "RRsets with differing TTLs use their lowest TTL (RFC 2181 §5.2)");
    }
    crate::dnssec::audit::warn(&zone, &path.display());
    Ok(zone)
}

fn read_into(path: &Path, origin: Name<Bytes>, builder: &mut ZoneBuilder, depth: usize) -> Result<(), LoadError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(LoadError::IncludeDepth {
            path: path.to_path_buf(),
        });
    }
    let (zf, _) = read(path)?;
    parse_into(zf, path, origin, builder, depth, &|err| locate_in_file(path, err))
}

/// One record in zone file syntax (what `template` renders): owner (lowercase wire), type,
/// class, TTL and rdata (uncompressed wire). Relative names are relative to `origin`; a
/// record without a TTL gets the zone file default.
pub fn parse_record(text: &str, origin: &Name<Bytes>) -> Result<ParsedRecord, String> {
    let mut zf = Zonefile::new();
    zf.extend_from_slice(text.as_bytes());
    zf.extend_from_slice(b"\n");
    zf.set_origin(origin.clone());
    zf.set_default_class(Class::IN);
    match zf.next_entry() {
        Ok(Some(Entry::Record(rec))) => {
            let mut rdata = Vec::new();
            rec.data()
                .compose_rdata(&mut rdata)
                .map_err(|_| "the record's data does not fit a message".to_string())?;
            Ok(ParsedRecord {
                owner: NameKey::of(rec.owner()).as_slice().into(),
                rtype: rec.rtype(),
                class: rec.class(),
                ttl: rec.ttl().as_secs(),
                rdata,
            })
        }
        Ok(_) => Err(format!("{text:?} is not a resource record")),
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

/// A record parsed from text, see [`parse_record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRecord {
    /// Owner, lowercase wire.
    pub owner: Box<[u8]>,
    /// Type.
    pub rtype: domain::base::iana::Rtype,
    /// Class.
    pub class: Class,
    /// TTL in seconds.
    pub ttl: u32,
    /// Uncompressed rdata.
    pub rdata: Vec<u8>,
}

fn parse_into(
    mut zf: Zonefile,
    path: &Path,
    origin: Name<Bytes>,
    builder: &mut ZoneBuilder,
    depth: usize,
    locate: &dyn Fn(&str) -> String,
) -> Result<(), LoadError> {
    zf.set_origin(origin);
    zf.set_default_class(Class::IN);
    let mut rdata = Vec::with_capacity(512);
    loop {
        let entry = zf.next_entry().map_err(|e| LoadError::Syntax {
            path: path.to_path_buf(),
            detail: locate(&e.to_string()),
        })?;
        match entry {
            None => return Ok(()),
            Some(Entry::Record(rec)) => {
                if rec.class() != Class::IN {
                    return Err(LoadError::Class {
                        path: path.to_path_buf(),
                        owner: rec.owner().to_string(),
                        class: rec.class().to_string(),
                    });
                }
                rdata.clear();
                // Composing into a Vec cannot fail for lack of space.
                if rec.data().compose_rdata(&mut rdata).is_err() {
                    continue;
                }
                let owner = NameKey::of(rec.owner());
                builder.add(owner.as_slice(), rec.rtype(), rec.ttl().as_secs(), &rdata);
            }
            Some(Entry::Include { path: inc, origin }) => {
                let inc_text: &str = inc.as_ref();
                let inc_path = Path::new(inc_text);
                let full = if inc_path.is_absolute() {
                    inc_path.to_path_buf()
                } else {
                    path.parent().unwrap_or(Path::new(".")).join(inc_path)
                };
                let inc_origin = match origin {
                    Some(o) => o,
                    None => zf.origin().map_err(|e| LoadError::Syntax {
                        path: path.to_path_buf(),
                        detail: format!(" $INCLUDE {}: {e}", inc_path.display()),
                    })?,
                };
                read_into(&full, inc_origin, builder, depth + 1)?;
            }
        }
    }
}

/// [`locate`] in the file at `path`, read again: errors are rare, big files are not.
fn locate_in_file(path: &Path, err: &str) -> String {
    match std::fs::read(path) {
        Ok(bytes) => locate(&bytes, err),
        Err(_) => format!(" {err}"),
    }
}

/// domain reports `line:col: message` where scanning stopped, which for an error in the last
/// field of an entry is the start of the next line. Name the line where the failing entry
/// starts instead: `LINE: message`.
fn locate(src: &[u8], err: &str) -> String {
    let mut parts = err.splitn(3, ':');
    let (Some(l), Some(c), Some(msg)) = (parts.next(), parts.next(), parts.next()) else {
        return format!(" {err}");
    };
    let (Ok(line), Ok(col)) = (l.trim().parse::<usize>(), c.trim().parse::<usize>()) else {
        return format!(" {err}");
    };
    let entries = entry_spans(src);
    // The entry whose span holds the position; at column 1 of an entry's first line the
    // scanner had just finished the entry before.
    let idx = entries.iter().position(|&(start, end)| start <= line && line <= end);
    let start = match idx {
        Some(i) if col == 1 && entries[i].0 == line && i > 0 => entries[i - 1].0,
        Some(i) => entries[i].0,
        None => entries
            .iter()
            .rev()
            .find(|&&(start, _)| start < line)
            .map_or(line, |e| e.0),
    };
    format!("{start}: {}", msg.trim())
}

/// (first line, last line) of each entry of a zone file: logical lines, joined across
/// parentheses, without blank and comment-only lines.
fn entry_spans(src: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let (mut line, mut depth) = (1usize, 0usize);
    let (mut in_quote, mut in_comment, mut escaped) = (false, false, false);
    let mut start: Option<usize> = None;
    for &b in src {
        if b == b'\n' {
            if depth == 0 && !in_quote {
                if let Some(s) = start.take() {
                    spans.push((s, line));
                }
            }
            in_comment = false;
            escaped = false;
            line += 1;
            continue;
        }
        if in_comment {
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' => in_quote = !in_quote,
            b';' if !in_quote => {
                in_comment = true;
                continue;
            }
            b'(' if !in_quote => depth += 1,
            b')' if !in_quote => depth = depth.saturating_sub(1),
            _ => {}
        }
        if !b.is_ascii_whitespace() && start.is_none() {
            start = Some(line);
        }
    }
    if let Some(s) = start {
        spans.push((s, line));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::lookup::Found;
    use crate::zone::name::parse_abs;
    use domain::base::iana::Rtype;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ringdns-zf-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const SOA: &str = "@ 3600 IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n";

    #[test]
    fn loads_origin_ttl_include_and_common_types() {
        let d = tmpdir("full");
        write(&d, "inc.zone", "inc A 192.0.2.9\n");
        let text = format!(
            "$TTL 600\n{SOA}www A 192.0.2.2\nwww AAAA 2001:db8::2\nmail MX 10 mx.example.test.\n\
             txt TXT \"hello world\" \"two\"\n_sip._udp SRV 10 5 5060 sip\nalias CNAME www\n\
             caa CAA 0 issue \"letsencrypt.org\"\n$INCLUDE inc.zone\n$ORIGIN sub.example.test.\nx A 192.0.2.3\n"
        );
        let p = write(&d, "db", &text);
        let origin = parse_abs("example.test").unwrap();
        let z = load(&p, &origin).unwrap();
        assert_eq!(z.serial(), 2024010101);
        assert_eq!(z.negative_ttl(), 300);
        let key = |n: &str| NameKey::of(&parse_abs(n).unwrap());
        for (n, t) in [
            ("www.example.test", Rtype::AAAA),
            ("mail.example.test", Rtype::MX),
            ("txt.example.test", Rtype::TXT),
            ("_sip._udp.example.test", Rtype::SRV),
            ("alias.example.test", Rtype::CNAME),
            ("caa.example.test", Rtype::CAA),
            ("inc.example.test", Rtype::A),
            ("x.sub.example.test", Rtype::A),
        ] {
            let k = key(n);
            match z.find(k.as_slice(), t) {
                Found::Name(node) => assert!(node.rrset(t).is_some(), "{n} {t}"),
                other => panic!("{n}: {other:?}"),
            }
        }
        let www = key("www.example.test");
        let Found::Name(node) = z.find(www.as_slice(), Rtype::A) else {
            panic!()
        };
        assert_eq!(node.rrset(Rtype::A).unwrap().ttl(), 600);
        // The empty non-terminal sub.example.test and _udp.example.test exist without data.
        let ent = key("_udp.example.test");
        assert!(matches!(z.find(ent.as_slice(), Rtype::A), Found::Name(n) if !n.has_data()));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn error_lines_point_at_the_entry() {
        let src = b"$ORIGIN x.\n; comment\n\n@ SOA ns h ( 1\n 2 3 4 5 )\nwww A bad\nmail MX x\n";
        assert_eq!(entry_spans(src), vec![(1, 1), (4, 5), (6, 6), (7, 7)]);
        assert_eq!(locate(src, "7:1: expected IPv4 address"), "6: expected IPv4 address");
        assert_eq!(locate(src, "7:9: bad"), "7: bad");
        assert_eq!(locate(src, "5:3: bad"), "4: bad");
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let d = tmpdir("syntax");
        let p = write(&d, "db", &format!("{SOA}www A not-an-address\n"));
        let e = load(&p, &parse_abs("example.test").unwrap()).unwrap_err().to_string();
        assert!(e.contains("/db:4: expected IPv4 address"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_zones_are_rejected() {
        let d = tmpdir("bad");
        let origin = parse_abs("example.test").unwrap();
        let p = write(&d, "nosoa", "www A 192.0.2.1\n");
        assert!(load(&p, &origin).unwrap_err().to_string().contains("no SOA"));
        let p = write(&d, "cname", &format!("{SOA}www CNAME x\nwww A 192.0.2.1\n"));
        assert!(
            load(&p, &origin)
                .unwrap_err()
                .to_string()
                .contains("CNAME and other data")
        );
        let p = write(&d, "cycle", &format!("{SOA}a NS ns.b\nb NS ns.a\n"));
        assert!(
            load(&p, &origin)
                .unwrap_err()
                .to_string()
                .contains("cyclic NS dependency")
        );
        let p = write(&d, "loop", "$INCLUDE loop\n");
        assert!(load(&p, &origin).unwrap_err().to_string().contains("nested more than"));
        let p = write(&d, "chaos", &format!("{SOA}x CH TXT \"a\"\n"));
        assert!(load(&p, &origin).is_err());
        let mut big = SOA.to_string();
        for i in 0..=crate::zone::store::MAX_RRSET_RECORDS {
            big.push_str(&format!("big TXT \"{i}\"\n"));
        }
        let p = write(&d, "big", &big);
        assert!(load(&p, &origin).unwrap_err().to_string().contains("more than"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn delegations_and_wildcards() {
        let d = tmpdir("deleg");
        let p = write(
            &d,
            "db",
            &format!("{SOA}sub NS ns.sub\nsub DS 1 8 2 0123456789abcdef\nns.sub A 192.0.2.5\n*.wild TXT \"w\"\n"),
        );
        let z = load(&p, &parse_abs("example.test").unwrap()).unwrap();
        let key = |n: &str| NameKey::of(&parse_abs(n).unwrap());
        let below = key("a.b.sub.example.test");
        assert!(matches!(z.find(below.as_slice(), Rtype::A), Found::Referral { .. }));
        let glue = key("ns.sub.example.test");
        assert!(matches!(z.find(glue.as_slice(), Rtype::A), Found::Referral { .. }));
        let cut = key("sub.example.test");
        assert!(matches!(z.find(cut.as_slice(), Rtype::A), Found::Referral { .. }));
        assert!(matches!(z.find(cut.as_slice(), Rtype::DS), Found::Name(_)));
        let w = key("x.wild.example.test");
        assert!(matches!(z.find(w.as_slice(), Rtype::TXT), Found::Wildcard(_)));
        let deeper = key("y.x.wild.example.test");
        assert!(matches!(z.find(deeper.as_slice(), Rtype::TXT), Found::Wildcard(_)));
        let wild_itself = key("wild.example.test");
        assert!(matches!(z.find(wild_itself.as_slice(), Rtype::TXT), Found::Name(n) if !n.has_data()));
        let nx = key("nope.example.test");
        assert!(matches!(z.find(nx.as_slice(), Rtype::A), Found::NxDomain));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
