//! Dotenv files as python-dotenv and Docker Compose read them: `KEY=value`, an `export ` prefix,
//! comments, single quotes (literal), double quotes (escapes, several lines), and `${VAR}` /
//! `${VAR:-default}` from earlier keys and the process environment.
//!
//! The grammar follows python-dotenv's parser (`dotenv/parser.py`) step by step, so both read a
//! line the same way; `tests/envfile.rs` holds a corpus that checks this against python-dotenv
//! itself. Where they differ on purpose, docs/config.md says so:
//! - a line that is not `KEY=value` is an error with its line number (python-dotenv warns and
//!   skips it, so a typo silently drops a setting);
//! - a single-quoted value is literal, `${...}` included (Compose's rule; python-dotenv expands
//!   it anyway).

/// One `KEY=value` of a file, with its line (1-based) for messages and `harness env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// `None` for a bare `KEY` line: named, but given no value (it sets nothing).
    pub value: Option<String>,
    pub line: usize,
}

/// Where and why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

struct Reader<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn advance(&mut self, n: usize) -> &'a str {
        let taken = &self.s[self.pos..self.pos + n];
        self.line += newlines(taken);
        self.pos += n;
        taken
    }

    /// Skips characters while `keep` holds; returns what was skipped.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let n = self
            .rest()
            .char_indices()
            .find(|(_, c)| !keep(*c))
            .map_or(self.rest().len(), |(i, _)| i);
        self.advance(n)
    }

    /// Whitespace that is not a line break.
    fn blanks(&mut self) -> &'a str {
        self.take_while(|c| c.is_whitespace() && c != '\n' && c != '\r')
    }
}

/// `\r\n`, `\n` and `\r` each count as one line break.
fn newlines(s: &str) -> usize {
    s.replace("\r\n", "\n")
        .chars()
        .filter(|c| *c == '\n' || *c == '\r')
        .count()
}

/// Parses a whole file. Values are returned before `${...}` expansion (see [`resolve`]).
pub fn parse(text: &str) -> Result<Vec<(Entry, bool)>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader {
        s: text,
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        r.take_while(char::is_whitespace);
        if r.rest().is_empty() {
            return Ok(out);
        }
        let line = r.line;
        let fail = |why: &str| ParseError {
            line,
            message: why.to_string(),
        };
        // `export ` (followed by a blank) is a prefix, not a key.
        if let Some(after) = r.rest().strip_prefix("export")
            && after.starts_with(|c: char| c.is_whitespace() && c != '\n' && c != '\r')
        {
            r.advance("export".len());
            r.blanks();
        }
        let key = match r.peek() {
            Some('#') => None,
            Some('\'') => {
                let body = &r.rest()[1..];
                let end = body
                    .find('\'')
                    .filter(|e| *e > 0)
                    .ok_or_else(|| fail("a quoted key has no closing quote"))?;
                let key = body[..end].to_string();
                r.advance(end + 2);
                Some(key)
            }
            _ => {
                let k = r.take_while(|c| c != '=' && c != '#' && !c.is_whitespace());
                if k.is_empty() {
                    return Err(fail("expected KEY=value"));
                }
                Some(k.to_string())
            }
        };
        r.blanks();
        let mut value = None;
        let mut quote = Quote::None;
        if key.is_some() && r.peek() == Some('=') {
            r.advance(1);
            let spaced = !r.blanks().is_empty();
            value = Some(if spaced && r.peek() == Some('#') {
                String::new()
            } else {
                match r.peek() {
                    Some(q @ ('\'' | '"')) => {
                        quote = if q == '\'' {
                            Quote::Single
                        } else {
                            Quote::Double
                        };
                        quoted(&mut r, q).ok_or_else(|| {
                            fail(&format!("the value's {q} quote is never closed"))
                        })?
                    }
                    None | Some('\n' | '\r') => String::new(),
                    _ => {
                        let raw = r.take_while(|c| c != '\n' && c != '\r');
                        unquoted(raw)
                    }
                }
            });
        }
        // An optional comment, then the end of the line.
        let before = r.pos;
        r.blanks();
        if r.peek() == Some('#') {
            r.take_while(|c| c != '\n' && c != '\r');
        } else {
            r.pos = before;
            r.blanks();
        }
        match r.peek() {
            None | Some('\n' | '\r') => {}
            Some(_) => {
                return Err(fail(if value.is_none() && key.is_some() {
                    "expected KEY=value (no `=` on this line)"
                } else {
                    "unexpected text after the value (quote it)"
                }));
            }
        }
        if let Some(key) = key {
            out.push((Entry { key, value, line }, quote == Quote::Single));
        }
    }
}

/// An unquoted value: up to a ` #` comment, trailing blanks removed.
fn unquoted(raw: &str) -> String {
    let mut cut = raw.len();
    let b = raw.as_bytes();
    for i in 1..b.len() {
        if b[i] == b'#' && (b[i - 1] as char).is_whitespace() {
            // python-dotenv drops the whitespace run before the `#` too.
            let start = raw[..i].trim_end().len();
            cut = start;
            break;
        }
    }
    raw[..cut].trim_end().to_string()
}

/// A quoted value after its opening quote `q`: `\` escapes the next character; decoded as
/// python-dotenv decodes (`\\` and `\'` in single quotes; also `\"`, `\a \b \f \n \r \t \v` in
/// double quotes; any other `\x` stays as it is).
fn quoted(r: &mut Reader, q: char) -> Option<String> {
    let body = &r.rest()[1..];
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == q {
            r.advance(1 + i + 1);
            return Some(out);
        }
        if c == '\\' {
            let (_, n) = chars.next()?;
            let decoded = match (q, n) {
                (_, '\\') => Some('\\'),
                (_, '\'') => Some('\''),
                ('"', '"') => Some('"'),
                ('"', 'a') => Some('\u{7}'),
                ('"', 'b') => Some('\u{8}'),
                ('"', 'f') => Some('\u{c}'),
                ('"', 'n') => Some('\n'),
                ('"', 'r') => Some('\r'),
                ('"', 't') => Some('\t'),
                ('"', 'v') => Some('\u{b}'),
                _ => None,
            };
            match decoded {
                Some(d) => out.push(d),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            }
            continue;
        }
        out.push(c);
    }
    None
}

/// `${NAME}` and `${NAME:-default}` in `value`, from `lookup` (an unset name gives the default,
/// or nothing).
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.contains(':') {
            // Not a variable python-dotenv knows: kept as it is.
            out.push_str(&rest[..start + 2 + end + 1]);
        } else {
            out.push_str(&rest[..start]);
            out.push_str(&lookup(name).unwrap_or_else(|| default.unwrap_or("").to_string()));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A file's keys in order, values expanded: earlier keys of the file (and `known`, the keys of
/// files read before it) win over the process environment `env`.
pub fn resolve(
    text: &str,
    known: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(Entry, String)>, ParseError> {
    let mut seen: Vec<(String, String)> = known.to_vec();
    let mut out = Vec::new();
    for (entry, literal) in parse(text)? {
        let Some(raw) = &entry.value else {
            continue;
        };
        let value = if literal {
            raw.clone()
        } else {
            let lookup = |name: &str| {
                seen.iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .or_else(|| env(name))
            };
            expand(raw, &lookup)
        };
        seen.push((entry.key.clone(), value.clone()));
        out.push((entry, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, String)> {
        resolve(text, &[], &|_| None)
            .unwrap()
            .into_iter()
            .map(|(e, v)| (e.key, v))
            .collect()
    }

    #[test]
    fn the_common_shapes() {
        let v = values(
            "# c\nA=1\nexport B = two words # note\nC='${A} lit'\nD=\"x${A}\\ty\"\nE=\nF\nG=a#b\nH=x=y\n",
        );
        assert_eq!(
            v,
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "${A} lit"),
                ("D", "x1\ty"),
                ("E", ""),
                ("G", "a#b"),
                ("H", "x=y")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn a_line_that_is_not_key_value_names_its_line() {
        let e = parse("A=1\n\nbad line here\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("A=\"never closed\nB=2\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("never closed"));
        let e = parse("A=\"x\" trailing\n").unwrap_err();
        assert!(e.message.contains("after the value"));
    }

    #[test]
    fn expansion_takes_earlier_keys_then_the_environment_then_the_default() {
        let env = |n: &str| (n == "HOME").then(|| "/h".to_string());
        let got: Vec<String> = resolve(
            "A=${HOME}/x\nHOME=/mine\nB=${HOME}\nC=${NOPE:-fallback}${NOPE}\n",
            &[],
            &env,
        )
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
        assert_eq!(got, ["/h/x", "/mine", "/mine", "fallback"]);
    }
}
