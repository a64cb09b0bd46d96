//! Mailpit's search syntax (the subset contracts.md §4 lists): `to: from: cc: bcc: subject:
//! message-id: is:read is:unread has:attachment before: after: tag:`, quoted phrases, a leading
//! `-` or `!` to negate, and free text. All terms must match; matching is case-insensitive.
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    To(String),
    From(String),
    Cc(String),
    Bcc(String),
    Subject(String),
    MessageId(String),
    IsRead,
    IsUnread,
    HasAttachment,
    Before(OffsetDateTime),
    After(OffsetDateTime),
    Tag(String),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub terms: Vec<(bool, Term)>,
}

impl Query {
    /// True when every term matches (negated terms must not).
    pub fn matches(&self, mut test: impl FnMut(&Term) -> bool) -> bool {
        self.terms.iter().all(|(negate, t)| test(t) != *negate)
    }
}

/// Splits on whitespace, keeping "quoted phrases" (also after a prefix: subject:"a b") together.
fn tokens(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn date(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(t);
    }
    if let Ok(t) = PrimitiveDateTime::parse(
        s,
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ) {
        return Some(t.assume_utc());
    }
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// Parses a query. Unknown prefixes and unparseable dates are searched as free text, so a query
/// never fails, like Mailpit's.
pub fn parse(q: &str) -> Query {
    let mut terms = Vec::new();
    for tok in tokens(q) {
        let (negate, body) = match tok.strip_prefix(['-', '!']) {
            Some(rest) if !rest.is_empty() => (true, rest.to_string()),
            _ => (false, tok.clone()),
        };
        let lower = body.to_lowercase();
        let term = match lower.split_once(':') {
            Some((key, value)) if !value.is_empty() => {
                let value = value.to_string();
                match key {
                    "to" => Term::To(value),
                    "from" => Term::From(value),
                    "cc" => Term::Cc(value),
                    "bcc" => Term::Bcc(value),
                    "subject" => Term::Subject(value),
                    "message-id" => Term::MessageId(value.trim_matches(['<', '>']).to_string()),
                    "tag" => Term::Tag(value),
                    "is" if value == "read" => Term::IsRead,
                    "is" if value == "unread" => Term::IsUnread,
                    "has" if value == "attachment" || value == "attachments" => Term::HasAttachment,
                    "before" => date(&value).map_or(Term::Text(lower.clone()), Term::Before),
                    "after" => date(&value).map_or(Term::Text(lower.clone()), Term::After),
                    _ => Term::Text(lower.clone()),
                }
            }
            _ => Term::Text(lower),
        };
        terms.push((negate, term));
    }
    Query { terms }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_quotes_and_negation() {
        let q =
            parse(r#"to:Bob@Example.com subject:"quarterly report" -is:read hello has:attachment"#);
        assert_eq!(
            q.terms,
            vec![
                (false, Term::To("bob@example.com".into())),
                (false, Term::Subject("quarterly report".into())),
                (true, Term::IsRead),
                (false, Term::Text("hello".into())),
                (false, Term::HasAttachment),
            ]
        );
        assert!(matches!(
            parse("before:2025-01-02").terms[0].1,
            Term::Before(_)
        ));
        assert_eq!(
            parse("before:notadate").terms[0].1,
            Term::Text("before:notadate".into())
        );
        assert!(parse("   ").terms.is_empty());
    }
}
