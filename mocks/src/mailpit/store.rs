//! Messages as Mailpit shows them: MIME parsing (mail-parser) into Mailpit's shapes, an in-memory
//! store that SMTP sessions and HTTP handlers share, pruning to `MP_MAX_MESSAGES`, and search.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::search::{Query, Term};

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Addr {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Address")]
    pub address: String,
}

#[derive(Debug, Clone)]
pub struct Part {
    pub part_id: String,
    pub file_name: String,
    pub content_type: String,
    pub content_id: String,
    pub data: Vec<u8>,
}

impl Part {
    fn json(&self) -> Value {
        use md5::Digest as _;
        json!({
            "PartID": self.part_id,
            "FileName": self.file_name,
            "ContentType": self.content_type,
            "ContentID": self.content_id,
            "Size": self.data.len(),
            "Checksums": {
                "MD5": hex::encode(md5::Md5::digest(&self.data)),
                "SHA1": hex::encode(sha1::Sha1::digest(&self.data)),
                "SHA256": hex::encode(sha2::Sha256::digest(&self.data)),
            },
        })
    }
}

/// What the SMTP session knew besides the message bytes.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub username: Option<String>,
}

#[derive(Debug)]
pub struct StoredMessage {
    pub id: String,
    pub message_id: String,
    pub from: Addr,
    pub to: Vec<Addr>,
    pub cc: Vec<Addr>,
    pub bcc: Vec<Addr>,
    pub reply_to: Vec<Addr>,
    pub return_path: String,
    pub subject: String,
    pub created: OffsetDateTime,
    pub date: OffsetDateTime,
    pub text: String,
    pub html: String,
    pub snippet: String,
    pub attachments: Vec<Part>,
    pub inline: Vec<Part>,
    /// Header name → values in order of appearance; names sorted as Mailpit returns them.
    pub headers: BTreeMap<String, Vec<String>>,
    pub raw: Vec<u8>,
    pub username: Option<String>,
    /// Lower-cased text that free-text search looks in.
    search_text: String,
    /// Lower-cased fields for prefixed terms, computed once so a search over a full mailbox
    /// does no allocation per message.
    lc: Lowered,
}

#[derive(Debug, Default)]
struct Lowered {
    from: String,
    to: String,
    cc: String,
    bcc: String,
    subject: String,
    message_id: String,
}

impl Lowered {
    fn of(
        from: &Addr,
        to: &[Addr],
        cc: &[Addr],
        bcc: &[Addr],
        subject: &str,
        message_id: &str,
    ) -> Self {
        // Newline-joined: query tokens never contain one, so no match spans two addresses.
        let join = |list: &[Addr]| {
            list.iter()
                .map(|a| format!("{} <{}>", a.name, a.address))
                .collect::<Vec<_>>()
                .join("\n")
                .to_lowercase()
        };
        Lowered {
            from: join(std::slice::from_ref(from)),
            to: join(to),
            cc: join(cc),
            bcc: join(bcc),
            subject: subject.to_lowercase(),
            message_id: message_id.to_lowercase(),
        }
    }
}

fn addrs(a: Option<&mail_parser::Address<'_>>) -> Vec<Addr> {
    a.map(|a| {
        a.iter()
            .map(|x| Addr {
                name: x.name().unwrap_or_default().to_string(),
                address: x.address().unwrap_or_default().to_string(),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn unfold(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    out.trim().to_string()
}

fn snippet(text: &str) -> String {
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(250).collect()
}

fn mail_date(d: &mail_parser::DateTime) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(d.to_timestamp()).ok()
}

/// Parses raw message bytes into Mailpit's shape. Never fails: unparseable mail is still stored
/// with what could be read, as Mailpit does.
pub fn parse_message(
    id: String,
    raw: Vec<u8>,
    env: &Envelope,
    created: OffsetDateTime,
) -> StoredMessage {
    let parsed = MessageParser::default().parse(&raw[..]);
    let Some(msg) = parsed else {
        return StoredMessage {
            id,
            message_id: String::new(),
            from: Addr {
                name: String::new(),
                address: env.mail_from.clone(),
            },
            to: Vec::new(),
            cc: Vec::new(),
            bcc: env
                .rcpt_to
                .iter()
                .map(|a| Addr {
                    name: String::new(),
                    address: a.clone(),
                })
                .collect(),
            return_path: env.mail_from.clone(),
            subject: String::new(),
            created,
            date: created,
            text: String::from_utf8_lossy(&raw).into_owned(),
            html: String::new(),
            snippet: snippet(&String::from_utf8_lossy(&raw)),
            attachments: Vec::new(),
            inline: Vec::new(),
            headers: BTreeMap::new(),
            search_text: String::from_utf8_lossy(&raw).to_lowercase(),
            lc: Lowered::default(),
            raw,
            username: env.username.clone(),
            reply_to: Vec::new(),
        };
    };
    let from = addrs(msg.from()).into_iter().next().unwrap_or_default();
    let to = addrs(msg.to());
    let cc = addrs(msg.cc());
    let mut bcc = addrs(msg.bcc());
    // Envelope recipients that no header names were blind copies.
    for rcpt in &env.rcpt_to {
        let known = to
            .iter()
            .chain(&cc)
            .chain(&bcc)
            .any(|a| a.address.eq_ignore_ascii_case(rcpt));
        if !known {
            bcc.push(Addr {
                name: String::new(),
                address: rcpt.clone(),
            });
        }
    }
    let html = msg
        .html_bodies()
        .find(|p| p.is_text_html())
        .and_then(|p| p.text_contents())
        .unwrap_or_default()
        .to_string();
    let text = msg
        .text_bodies()
        .find(|p| p.is_text() && !p.is_text_html())
        .and_then(|p| p.text_contents())
        .map(str::to_string)
        .or_else(|| msg.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in msg.headers() {
        let name_end = (h.offset_start() as usize).min(raw.len());
        let field = (h.offset_field() as usize).min(name_end);
        let name = String::from_utf8_lossy(&raw[field..name_end])
            .trim_end_matches(':')
            .trim()
            .to_string();
        let name = if name.is_empty() {
            h.name().to_string()
        } else {
            name
        };
        let end = (h.offset_end() as usize).min(raw.len());
        headers
            .entry(name)
            .or_default()
            .push(unfold(&raw[name_end..end]));
    }
    let mut attachments = Vec::new();
    let mut inline = Vec::new();
    for (i, part_id) in msg.attachments.iter().enumerate() {
        let Some(part) = msg.parts.get(*part_id as usize) else {
            continue;
        };
        let ct = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let content_id = part
            .content_id()
            .unwrap_or_default()
            .trim_matches(|c| c == '<' || c == '>')
            .to_string();
        let disposition = part
            .content_disposition()
            .map(|d| d.ctype().to_ascii_lowercase())
            .unwrap_or_default();
        let p = Part {
            part_id: (i + 2).to_string(),
            file_name: part.attachment_name().unwrap_or_default().to_string(),
            content_type: ct,
            content_id: content_id.clone(),
            data: part.contents().to_vec(),
        };
        if !content_id.is_empty() && disposition != "attachment" {
            inline.push(p);
        } else {
            attachments.push(p);
        }
    }
    let subject = msg.subject().unwrap_or_default().to_string();
    let message_id = msg.message_id().unwrap_or_default().to_string();
    let date = msg.date().and_then(mail_date).unwrap_or(created);
    let reply_to = addrs(msg.reply_to());
    let snippet_source = if text.trim().is_empty() {
        msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default()
    } else {
        text.clone()
    };
    let mut search_text = String::new();
    for a in std::iter::once(&from).chain(&to).chain(&cc).chain(&bcc) {
        search_text.push_str(&a.name);
        search_text.push(' ');
        search_text.push_str(&a.address);
        search_text.push(' ');
    }
    search_text.push_str(&subject);
    search_text.push(' ');
    search_text.push_str(&snippet_source);
    for a in attachments.iter().chain(&inline) {
        search_text.push(' ');
        search_text.push_str(&a.file_name);
    }
    let return_path = msg
        .return_address()
        .map(str::to_string)
        .unwrap_or_else(|| env.mail_from.clone());
    drop(msg);
    let lc = Lowered::of(&from, &to, &cc, &bcc, &subject, &message_id);
    StoredMessage {
        lc,
        id,
        message_id,
        from,
        to,
        cc,
        bcc,
        reply_to,
        return_path,
        subject,
        created,
        date,
        snippet: snippet(&snippet_source),
        text,
        html,
        attachments,
        inline,
        headers,
        search_text: search_text.to_lowercase(),
        raw,
        username: env.username.clone(),
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl StoredMessage {
    pub fn summary_json(&self, read: bool) -> Value {
        let mut v = json!({
            "ID": self.id,
            "MessageID": self.message_id,
            "Read": read,
            "From": self.from,
            "To": self.to,
            "Cc": self.cc,
            "Bcc": self.bcc,
            "ReplyTo": self.reply_to,
            "Subject": self.subject,
            "Created": rfc3339(self.created),
            "Tags": [],
            "Size": self.raw.len(),
            "Attachments": self.attachments.len(),
            "Snippet": self.snippet,
        });
        if let Some(u) = &self.username {
            v["Username"] = json!(u);
        }
        v
    }

    pub fn message_json(&self) -> Value {
        let mut v = json!({
            "ID": self.id,
            "MessageID": self.message_id,
            "From": self.from,
            "To": self.to,
            "Cc": self.cc,
            "Bcc": self.bcc,
            "ReplyTo": self.reply_to,
            "ReturnPath": self.return_path,
            "Subject": self.subject,
            "ListUnsubscribe": {"Header": "", "Links": [], "Errors": "", "HeaderPost": ""},
            "Date": rfc3339(self.date),
            "Tags": [],
            "Text": self.text,
            "HTML": self.html,
            "Size": self.raw.len(),
            "Inline": self.inline.iter().map(Part::json).collect::<Vec<_>>(),
            "Attachments": self.attachments.iter().map(Part::json).collect::<Vec<_>>(),
        });
        if let Some(u) = &self.username {
            v["Username"] = json!(u);
        }
        v
    }

    pub fn part(&self, part_id: &str) -> Option<&Part> {
        self.attachments
            .iter()
            .chain(&self.inline)
            .find(|p| p.part_id == part_id)
    }

    fn matches(&self, term: &Term, read: bool) -> bool {
        let lc = &self.lc;
        match term {
            Term::To(s) => lc.to.contains(s.as_str()),
            Term::From(s) => lc.from.contains(s.as_str()),
            Term::Cc(s) => lc.cc.contains(s.as_str()),
            Term::Bcc(s) => lc.bcc.contains(s.as_str()),
            Term::Subject(s) => lc.subject.contains(s.as_str()),
            Term::MessageId(s) => lc.message_id.contains(s.as_str()),
            Term::IsRead => read,
            Term::IsUnread => !read,
            Term::HasAttachment => !self.attachments.is_empty(),
            Term::Before(t) => self.created < *t,
            Term::After(t) => self.created > *t,
            Term::Tag(_) => false,
            Term::Text(s) => self.search_text.contains(s.as_str()),
        }
    }
}

struct Slot {
    msg: Arc<StoredMessage>,
    read: bool,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    /// Insertion order; newest is last.
    by_seq: BTreeMap<u64, Slot>,
    ids: HashMap<String, u64>,
    unread: usize,
}

/// Counters reported by /api/v1/info.
#[derive(Default)]
pub struct Stats {
    pub smtp_accepted: AtomicU64,
    pub smtp_accepted_size: AtomicU64,
    pub smtp_rejected: AtomicU64,
    pub messages_deleted: AtomicU64,
}

/// A page of results plus the totals Mailpit reports with it.
pub struct Page {
    pub total: usize,
    pub unread: usize,
    pub matched: usize,
    pub matched_unread: usize,
    pub start: usize,
    pub items: Vec<(Arc<StoredMessage>, bool)>,
}

impl Page {
    pub fn json(&self) -> Value {
        json!({
            "total": self.total,
            "unread": self.unread,
            "messages_count": self.matched,
            "messages_unread": self.matched_unread,
            "start": self.start,
            "tags": [],
            "messages": self.items.iter().map(|(m, r)| m.summary_json(*r)).collect::<Vec<_>>(),
        })
    }
}

/// The shared mailbox. A `RwLock` rather than a channel: readers (HTTP) vastly outnumber
/// writers, and no lock is held across an await.
pub struct Store {
    inner: RwLock<Inner>,
    max_messages: usize,
    pub stats: Stats,
}

impl Store {
    pub fn new(max_messages: usize) -> Store {
        Store {
            inner: RwLock::new(Inner::default()),
            max_messages,
            stats: Stats::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a message and prunes the oldest beyond the limit (0 = no limit).
    pub fn add(&self, msg: StoredMessage) {
        let size = msg.raw.len() as u64;
        let mut inner = self.write();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.ids.insert(msg.id.clone(), seq);
        inner.by_seq.insert(
            seq,
            Slot {
                msg: Arc::new(msg),
                read: false,
            },
        );
        inner.unread += 1;
        let mut pruned = 0;
        while self.max_messages > 0 && inner.by_seq.len() > self.max_messages {
            let Some((_, slot)) = inner.by_seq.pop_first() else {
                break;
            };
            inner.ids.remove(&slot.msg.id);
            if !slot.read {
                inner.unread -= 1;
            }
            pruned += 1;
        }
        drop(inner);
        self.stats.smtp_accepted.fetch_add(1, Ordering::Relaxed);
        self.stats
            .smtp_accepted_size
            .fetch_add(size, Ordering::Relaxed);
        self.stats
            .messages_deleted
            .fetch_add(pruned, Ordering::Relaxed);
    }

    pub fn count(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.by_seq.len(), inner.unread)
    }

    pub fn total_size(&self) -> usize {
        self.read().by_seq.values().map(|s| s.msg.raw.len()).sum()
    }

    /// Newest first. `query` of None lists everything.
    pub fn page(&self, query: Option<&Query>, start: usize, limit: usize) -> Page {
        let inner = self.read();
        let mut matched = 0;
        let mut matched_unread = 0;
        let mut items = Vec::new();
        for slot in inner.by_seq.values().rev() {
            if let Some(q) = query
                && !q.matches(|t| slot.msg.matches(t, slot.read))
            {
                continue;
            }
            if matched >= start && items.len() < limit {
                items.push((slot.msg.clone(), slot.read));
            }
            matched += 1;
            if !slot.read {
                matched_unread += 1;
            }
        }
        Page {
            total: inner.by_seq.len(),
            unread: inner.unread,
            matched,
            matched_unread,
            start,
            items,
        }
    }

    fn seq_of(inner: &Inner, id: &str) -> Option<u64> {
        if id == "latest" {
            inner.by_seq.keys().next_back().copied()
        } else {
            inner.ids.get(id).copied()
        }
    }

    /// A message by ID or `latest`, without changing its read flag.
    pub fn get(&self, id: &str) -> Option<Arc<StoredMessage>> {
        let inner = self.read();
        let seq = Self::seq_of(&inner, id)?;
        inner.by_seq.get(&seq).map(|s| s.msg.clone())
    }

    /// A message by ID or `latest`, marking it read (as opening it in Mailpit does).
    pub fn open(&self, id: &str) -> Option<Arc<StoredMessage>> {
        let mut inner = self.write();
        let seq = Self::seq_of(&inner, id)?;
        let slot = inner.by_seq.get_mut(&seq)?;
        let was_unread = !slot.read;
        slot.read = true;
        let msg = slot.msg.clone();
        if was_unread {
            inner.unread -= 1;
        }
        Some(msg)
    }

    /// Sets the read flag on the given IDs, on a search's matches, or on everything.
    pub fn set_read(&self, ids: &[String], search: Option<&Query>, read: bool) -> usize {
        let mut inner = self.write();
        let targets: Vec<u64> = if !ids.is_empty() {
            ids.iter()
                .filter_map(|id| Self::seq_of(&inner, id))
                .collect()
        } else {
            inner
                .by_seq
                .iter()
                .filter(|(_, s)| search.is_none_or(|q| q.matches(|t| s.msg.matches(t, s.read))))
                .map(|(k, _)| *k)
                .collect()
        };
        let mut changed = 0;
        for seq in targets {
            if let Some(slot) = inner.by_seq.get_mut(&seq)
                && slot.read != read
            {
                slot.read = read;
                changed += 1;
            }
        }
        if read {
            inner.unread -= changed;
        } else {
            inner.unread += changed;
        }
        changed
    }

    /// Deletes the given IDs, or everything when `ids` is empty.
    pub fn delete(&self, ids: &[String]) -> usize {
        let mut inner = self.write();
        let targets: Vec<u64> = if ids.is_empty() {
            inner.by_seq.keys().copied().collect()
        } else {
            ids.iter()
                .filter_map(|id| Self::seq_of(&inner, id))
                .collect()
        };
        self.remove(&mut inner, targets)
    }

    pub fn delete_matching(&self, query: &Query) -> usize {
        let mut inner = self.write();
        let targets: Vec<u64> = inner
            .by_seq
            .iter()
            .filter(|(_, s)| query.matches(|t| s.msg.matches(t, s.read)))
            .map(|(k, _)| *k)
            .collect();
        self.remove(&mut inner, targets)
    }

    fn remove(&self, inner: &mut Inner, seqs: Vec<u64>) -> usize {
        let mut removed = 0;
        for seq in seqs {
            if let Some(slot) = inner.by_seq.remove(&seq) {
                inner.ids.remove(&slot.msg.id);
                if !slot.read {
                    inner.unread -= 1;
                }
                removed += 1;
            }
        }
        self.stats
            .messages_deleted
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Envelope {
        Envelope {
            mail_from: "sender@example.com".into(),
            rcpt_to: vec!["to@example.com".into(), "hidden@example.com".into()],
            username: Some("u".into()),
        }
    }

    const MIXED: &str = "From: Alice <alice@example.com>\r\nTo: Bob <to@example.com>\r\nSubject: Report\r\n\tfolded\r\nMessage-ID: <m1@example.com>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain\r\n\r\nHello   plain\r\n--YY\r\nContent-Type: text/html\r\n\r\n<p>Hello html</p>\r\n--YY--\r\n--XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n--XX--\r\n";

    #[test]
    fn parses_a_multipart_message_into_mailpit_fields() {
        let m = parse_message(
            "id1".into(),
            MIXED.as_bytes().to_vec(),
            &env(),
            OffsetDateTime::now_utc(),
        );
        assert_eq!(m.from.address, "alice@example.com");
        assert_eq!(m.from.name, "Alice");
        assert_eq!(m.subject, "Report folded");
        assert_eq!(m.message_id, "m1@example.com");
        assert_eq!(m.text.trim(), "Hello   plain");
        assert_eq!(m.html.trim(), "<p>Hello html</p>");
        assert_eq!(m.snippet, "Hello plain");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].file_name, "r.pdf");
        assert_eq!(m.attachments[0].data, b"%PDF-1");
        assert_eq!(
            m.bcc,
            vec![Addr {
                name: String::new(),
                address: "hidden@example.com".into()
            }]
        );
        assert_eq!(m.headers["Subject"], vec!["Report folded".to_string()]);
        assert_eq!(rfc3339(m.date), "2025-07-01T10:00:00Z");
    }

    #[test]
    fn prefixed_terms_match_names_and_addresses_case_insensitively() {
        let store = Store::new(0);
        store.add(parse_message(
            "a".into(),
            MIXED.as_bytes().to_vec(),
            &env(),
            OffsetDateTime::now_utc(),
        ));
        let hits = |q: &str| {
            store
                .page(Some(&crate::mailpit::search::parse(q)), 0, 10)
                .matched
        };
        assert_eq!(hits("to:BOB"), 1);
        assert_eq!(hits("to:to@example.com"), 1);
        assert_eq!(hits("from:alice@"), 1);
        assert_eq!(hits("bcc:hidden"), 1);
        assert_eq!(hits("to:alice"), 0);
        assert_eq!(hits("message-id:<m1@example.com>"), 1);
        assert_eq!(hits("subject:report is:unread has:attachment r.pdf"), 1);
        assert_eq!(hits("-subject:report"), 0);
    }

    #[test]
    fn store_prunes_oldest_and_keeps_unread_counts() {
        let store = Store::new(2);
        for i in 0..3 {
            let raw = format!("Subject: s{i}\r\n\r\nbody\r\n").into_bytes();
            store.add(parse_message(
                format!("id{i}"),
                raw,
                &env(),
                OffsetDateTime::now_utc(),
            ));
        }
        assert_eq!(store.count(), (2, 2));
        assert!(store.get("id0").is_none());
        assert_eq!(store.get("latest").unwrap().id, "id2");
        store.open("id1");
        assert_eq!(store.count(), (2, 1));
        assert_eq!(store.set_read(&[], None, true), 1);
        assert_eq!(store.count(), (2, 0));
        assert_eq!(store.set_read(&["id2".into()], None, false), 1);
        assert_eq!(store.count(), (2, 1));
        assert_eq!(store.delete(&["id2".into()]), 1);
        assert_eq!(store.count(), (1, 0));
        assert_eq!(store.delete(&[]), 1);
        assert_eq!(store.count(), (0, 0));
    }
}
