//! Compose variable interpolation as a pure function of the text and a lookup.
//!
//! Supported forms, as in the compose specification:
//! `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset only),
//! `${VAR:?message}` (error when unset or empty), `${VAR?message}` (error when unset),
//! and `$$` for a literal `$`. Defaults may themselves contain `${...}`.

/// Why a string could not be interpolated. `offset` is the byte offset of the `$` in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${VAR:?message}` or `${VAR?message}` with the variable missing.
    Required {
        var: String,
        message: String,
        offset: usize,
    },
    /// `${` without a matching `}`.
    Unclosed { offset: usize },
    /// `${}` or a name with characters other than letters, digits and `_`.
    BadName { name: String, offset: usize },
}

impl InterpolateError {
    pub fn offset(&self) -> usize {
        match self {
            Self::Required { offset, .. }
            | Self::Unclosed { offset }
            | Self::BadName { offset, .. } => *offset,
        }
    }
}

impl std::fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Required { var, message, .. } if message.is_empty() => {
                write!(f, "required variable {var} is not set")
            }
            Self::Required { var, message, .. } => {
                write!(f, "required variable {var} is not set: {message}")
            }
            Self::Unclosed { .. } => write!(f, "`${{` without a closing `}}`"),
            Self::BadName { name, .. } => write!(f, "`{name}` is not a variable name"),
        }
    }
}

/// Replaces every variable reference in `input` with the value `lookup` gives.
/// A variable that `lookup` does not know is unset; an unset plain reference becomes "".
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            // Copy a whole UTF-8 char; `$` is ASCII so it never starts inside one.
            let ch = input[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let start = i;
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let close = matching_brace(input, i + 2)
                    .ok_or(InterpolateError::Unclosed { offset: start })?;
                let body = &input[i + 2..close];
                out.push_str(&expand_braced(body, start, i + 2, lookup)?);
                i = close + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let end = input[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|n| i + 1 + n)
                    .unwrap_or(input.len());
                out.push_str(&lookup(&input[i + 1..end]).unwrap_or_default());
                i = end;
            }
            // A lone `$` (end of text, or before a character no name starts with) stays literal.
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Index of the `}` closing a `${` whose body starts at `from`, skipping nested `${...}`.
fn matching_brace(input: &str, from: usize) -> Option<usize> {
    let bytes = input.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn expand_braced(
    body: &str,
    dollar: usize,
    body_offset: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let name = &body[..name_end];
    let rest = &body[name_end..];
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !valid {
        return Err(InterpolateError::BadName {
            name: body.to_string(),
            offset: dollar,
        });
    }
    let value = lookup(name);
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = rest.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = rest.strip_prefix('?') {
        ("?", a)
    } else if rest.is_empty() {
        ("", "")
    } else {
        return Err(InterpolateError::BadName {
            name: body.to_string(),
            offset: dollar,
        });
    };
    let missing = match op {
        ":-" | ":?" => value.as_deref().is_none_or(str::is_empty),
        _ => value.is_none(),
    };
    match op {
        "" => Ok(value.unwrap_or_default()),
        ":-" | "-" if missing => {
            // Offsets inside a default are shifted so errors still point into the original text.
            interpolate(arg, lookup).map_err(|e| shift(e, body_offset + name_end + op.len()))
        }
        ":?" | "?" if missing => Err(InterpolateError::Required {
            var: name.to_string(),
            message: interpolate(arg, lookup).unwrap_or_else(|_| arg.to_string()),
            offset: dollar,
        }),
        _ => Ok(value.unwrap_or_default()),
    }
}

fn shift(e: InterpolateError, by: usize) -> InterpolateError {
    match e {
        InterpolateError::Required {
            var,
            message,
            offset,
        } => InterpolateError::Required {
            var,
            message,
            offset: offset + by,
        },
        InterpolateError::Unclosed { offset } => InterpolateError::Unclosed {
            offset: offset + by,
        },
        InterpolateError::BadName { name, offset } => InterpolateError::BadName {
            name,
            offset: offset + by,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)], input: &str) -> Result<String, InterpolateError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        interpolate(input, &|k| map.get(k).cloned())
    }

    #[test]
    fn text_without_dollar_is_unchanged() {
        assert_eq!(with(&[], "plain text: {} ü").unwrap(), "plain text: {} ü");
        assert_eq!(with(&[], "").unwrap(), "");
    }

    #[test]
    fn braced_and_bare_references() {
        let v = [("A", "1"), ("B_2", "two")];
        assert_eq!(with(&v, "${A}").unwrap(), "1");
        assert_eq!(with(&v, "x${A}y").unwrap(), "x1y");
        assert_eq!(with(&v, "$A/$B_2").unwrap(), "1/two");
        assert_eq!(with(&v, "$B_2-x").unwrap(), "two-x");
        assert_eq!(with(&v, "${A}${B_2}").unwrap(), "1two");
    }

    #[test]
    fn unset_plain_reference_is_empty() {
        assert_eq!(with(&[], "a${NOPE}b").unwrap(), "ab");
        assert_eq!(with(&[], "a$NOPE").unwrap(), "a");
    }

    #[test]
    fn colon_dash_default_applies_when_unset_or_empty() {
        assert_eq!(with(&[], "${X:-d}").unwrap(), "d");
        assert_eq!(with(&[("X", "")], "${X:-d}").unwrap(), "d");
        assert_eq!(with(&[("X", "v")], "${X:-d}").unwrap(), "v");
        assert_eq!(with(&[], "${X:-}").unwrap(), "");
    }

    #[test]
    fn dash_default_applies_only_when_unset() {
        assert_eq!(with(&[], "${X-d}").unwrap(), "d");
        assert_eq!(with(&[("X", "")], "${X-d}").unwrap(), "");
        assert_eq!(with(&[("X", "v")], "${X-d}").unwrap(), "v");
    }

    #[test]
    fn defaults_may_contain_references_and_punctuation() {
        let v = [("HOST", "h")];
        assert_eq!(
            with(&v, "${URL:-http://${HOST}:80/}").unwrap(),
            "http://h:80/"
        );
        assert_eq!(with(&[], "${X:-a:b-c?d}").unwrap(), "a:b-c?d");
        assert_eq!(with(&[], "${X:-${Y:-deep}}").unwrap(), "deep");
        assert_eq!(with(&[], "${X:-$$}").unwrap(), "$");
    }

    #[test]
    fn required_errors_carry_name_message_and_offset() {
        let e = with(&[], "ab${TOKEN:?set the token}").unwrap_err();
        assert_eq!(
            e,
            InterpolateError::Required {
                var: "TOKEN".into(),
                message: "set the token".into(),
                offset: 2
            }
        );
        assert_eq!(
            e.to_string(),
            "required variable TOKEN is not set: set the token"
        );
        assert!(with(&[("TOKEN", "")], "${TOKEN:?m}").is_err());
        assert_eq!(with(&[("TOKEN", "t")], "${TOKEN:?m}").unwrap(), "t");
    }

    #[test]
    fn question_without_colon_allows_empty() {
        assert_eq!(with(&[("T", "")], "${T?m}").unwrap(), "");
        let e = with(&[], "${T?}").unwrap_err();
        assert_eq!(e.to_string(), "required variable T is not set");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(with(&[("A", "1")], "$$A").unwrap(), "$A");
        assert_eq!(with(&[], "$${A}").unwrap(), "${A}");
        assert_eq!(with(&[], "cost: 5$$").unwrap(), "cost: 5$");
    }

    #[test]
    fn lone_dollar_stays() {
        assert_eq!(with(&[], "$").unwrap(), "$");
        assert_eq!(with(&[], "a $ b").unwrap(), "a $ b");
        assert_eq!(with(&[], "$1").unwrap(), "$1");
    }

    #[test]
    fn unclosed_brace_is_an_error_at_its_dollar() {
        assert_eq!(
            with(&[], "xy${A").unwrap_err(),
            InterpolateError::Unclosed { offset: 2 }
        );
        assert!(with(&[], "${A:-${B}").is_err());
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(matches!(
            with(&[], "${}").unwrap_err(),
            InterpolateError::BadName { .. }
        ));
        assert!(matches!(
            with(&[], "${1A}").unwrap_err(),
            InterpolateError::BadName { .. }
        ));
        assert!(matches!(
            with(&[], "${A B}").unwrap_err(),
            InterpolateError::BadName { .. }
        ));
        assert!(matches!(
            with(&[], "${A:+x}").unwrap_err(),
            InterpolateError::BadName { .. }
        ));
    }

    #[test]
    fn error_inside_a_default_points_into_the_original_text() {
        let e = with(&[], "${A:-x${B:?need B}}").unwrap_err();
        assert_eq!(e.offset(), 6, "{e:?}");
        assert_eq!(&"${A:-x${B:?need B}}"[6..8], "${");
    }

    #[test]
    fn values_are_not_reinterpolated() {
        assert_eq!(with(&[("A", "${B}"), ("B", "no")], "${A}").unwrap(), "${B}");
        assert_eq!(with(&[("A", "$$")], "$A").unwrap(), "$$");
    }

    #[test]
    fn unicode_around_references_survives() {
        assert_eq!(with(&[("A", "ä")], "ö${A}ü$A€").unwrap(), "öäüä€");
    }
}
