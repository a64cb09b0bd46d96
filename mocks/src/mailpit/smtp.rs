//! The SMTP side of the catcher: a pure command parser, and a session that speaks EHLO/HELO,
//! AUTH PLAIN/LOGIN, MAIL/RCPT/DATA (dot-unstuffing, SIZE), RSET, NOOP, QUIT and STARTTLS.
//! Bad commands get 500/501 and the session goes on.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use time::OffsetDateTime;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::store::{Envelope, Store, parse_message};
use crate::MockError;
use crate::server::{Running, local_addr};

// ---- parser -----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Mail {
        from: String,
        size: Option<u64>,
    },
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Quit,
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    Vrfy,
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// 500: not a command we know.
    Unrecognized,
    /// 501: a known command with bad arguments.
    Syntax(&'static str),
}

/// Parses one command line (without CRLF).
pub fn parse_command(line: &str) -> Result<Command, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (verb, rest) = match line.split_once(' ') {
        Some((v, r)) => (v, r.trim()),
        None => (line, ""),
    };
    let no_args = |cmd: Command| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(ParseError::Syntax("this command takes no arguments"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "HELO" | "EHLO" => {
            let domain = rest.split_whitespace().next().unwrap_or_default();
            if domain.is_empty() {
                return Err(ParseError::Syntax(
                    "a domain or address literal is required",
                ));
            }
            Ok(if verb.eq_ignore_ascii_case("HELO") {
                Command::Helo(domain.to_string())
            } else {
                Command::Ehlo(domain.to_string())
            })
        }
        "MAIL" => {
            let (path, params) = path_arg(rest, "FROM:")?;
            let mut size = None;
            for p in params.split_whitespace() {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                if k.eq_ignore_ascii_case("SIZE") {
                    size = Some(
                        v.parse()
                            .map_err(|_| ParseError::Syntax("SIZE must be a number"))?,
                    );
                }
            }
            Ok(Command::Mail { from: path, size })
        }
        "RCPT" => {
            let (path, _) = path_arg(rest, "TO:")?;
            if path.is_empty() {
                return Err(ParseError::Syntax("a recipient address is required"));
            }
            Ok(Command::Rcpt(path))
        }
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        "QUIT" => no_args(Command::Quit),
        "STARTTLS" => no_args(Command::StartTls),
        "NOOP" => Ok(Command::Noop),
        "VRFY" => Ok(Command::Vrfy),
        "HELP" => Ok(Command::Help),
        "AUTH" => {
            let mut parts = rest.split_whitespace();
            let mechanism = parts
                .next()
                .ok_or(ParseError::Syntax("AUTH needs a mechanism"))?
                .to_ascii_uppercase();
            let initial = parts.next().map(str::to_string);
            if parts.next().is_some() {
                return Err(ParseError::Syntax(
                    "AUTH takes a mechanism and one response",
                ));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        _ => Err(ParseError::Unrecognized),
    }
}

/// Splits `FROM:<path> params` (the keyword case-insensitive, spaces after the colon tolerated,
/// angle brackets optional as many clients omit them).
fn path_arg(rest: &str, keyword: &str) -> Result<(String, String), ParseError> {
    let syntax = ParseError::Syntax("expected FROM:<address> or TO:<address>");
    if rest.len() < keyword.len() || !rest[..keyword.len()].eq_ignore_ascii_case(keyword) {
        return Err(syntax);
    }
    let rest = rest[keyword.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>').ok_or(syntax)?;
        let path = &inner[..end];
        if path.contains(['<', ' ']) {
            return Err(ParseError::Syntax(
                "the address must not contain spaces or '<'",
            ));
        }
        Ok((path.to_string(), inner[end + 1..].trim().to_string()))
    } else {
        let mut parts = rest.splitn(2, ' ');
        let path = parts.next().unwrap_or_default();
        if path.contains(['<', '>']) {
            return Err(syntax);
        }
        Ok((
            path.to_string(),
            parts.next().unwrap_or_default().trim().to_string(),
        ))
    }
}

// ---- server -----------------------------------------------------------------------------------

/// Commands longer than this are refused (RFC 5321 allows 512; AUTH responses need more).
const MAX_COMMAND_LINE: usize = 4096;
const MAX_RECIPIENTS: usize = 100;
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) struct SmtpContext {
    pub store: Arc<Store>,
    pub hostname: String,
    pub max_message_size: usize,
    pub auth_accept_any: bool,
    pub auth_allow_insecure: bool,
    pub tls: Option<TlsAcceptor>,
}

pub(crate) fn serve_smtp(
    listener: TcpListener,
    ctx: Arc<SmtpContext>,
) -> Result<Running, MockError> {
    let addr = local_addr(&listener)?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    sessions.spawn(connection(stream, peer, ctx.clone()));
                }
            }
        }
        // Sessions are cut off: a mail half-sent at shutdown is not worth waiting for.
        sessions.shutdown().await;
    });
    Ok(Running::new(addr, stop, task))
}

async fn connection(stream: TcpStream, _peer: SocketAddr, ctx: Arc<SmtpContext>) {
    let mut session = Session::default();
    if let Ok(Some(stream)) = run(stream, &ctx, &mut session, false).await {
        let Some(acceptor) = &ctx.tls else { return };
        let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
        let Ok(Ok(tls)) = handshake.await else {
            return;
        };
        // RFC 3207: after STARTTLS the client starts over with EHLO.
        let mut session = Session::default();
        let _ = run(tls, &ctx, &mut session, true).await;
    }
}

#[derive(Default)]
struct Session {
    greeted: bool,
    username: Option<String>,
    mail_from: Option<String>,
    rcpt: Vec<String>,
}

impl Session {
    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpt.clear();
    }
}

enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Reads one line into `buf` (including the newline) keeping at most `limit` bytes; the rest
/// of an overlong line is consumed and dropped so the session stays in step.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                Line::Eof
            } else if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = limit.saturating_sub(buf.len());
        if take > room {
            too_long = true;
            buf.extend_from_slice(&chunk[..room]);
        } else {
            buf.extend_from_slice(&chunk[..take]);
        }
        r.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// Runs a session on `stream`. Returns the raw stream back when the client asked for STARTTLS.
async fn run<S>(
    stream: S,
    ctx: &SmtpContext,
    s: &mut Session,
    tls_active: bool,
) -> std::io::Result<Option<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut io = BufReader::new(stream);
    if !tls_active {
        reply(
            &mut io,
            &format!("220 {} Mailpit ESMTP Service ready", ctx.hostname),
        )
        .await?;
    }
    let mut line = Vec::with_capacity(256);
    loop {
        let read = tokio::time::timeout(
            IDLE_TIMEOUT,
            read_line(&mut io, &mut line, MAX_COMMAND_LINE),
        )
        .await;
        let read = match read {
            Ok(r) => r?,
            Err(_) => {
                reply(&mut io, "421 4.4.2 Idle timeout, closing connection").await?;
                return Ok(None);
            }
        };
        match read {
            Line::Eof => return Ok(None),
            Line::TooLong => {
                reply(&mut io, "500 5.5.2 Line too long").await?;
                continue;
            }
            Line::Complete => {}
        }
        let text = String::from_utf8_lossy(&line);
        let cmd = match parse_command(&text) {
            Ok(c) => c,
            Err(ParseError::Unrecognized) => {
                reply(&mut io, "500 5.5.2 Syntax error, command unrecognized").await?;
                continue;
            }
            Err(ParseError::Syntax(why)) => {
                reply(
                    &mut io,
                    &format!("501 5.5.4 Syntax error in parameters or arguments: {why}"),
                )
                .await?;
                continue;
            }
        };
        let auth_allowed = ctx.auth_accept_any && (tls_active || ctx.auth_allow_insecure);
        match cmd {
            Command::Helo(domain) => {
                s.greeted = true;
                s.reset_transaction();
                reply(&mut io, &format!("250 {} greets {domain}", ctx.hostname)).await?;
            }
            Command::Ehlo(domain) => {
                s.greeted = true;
                s.reset_transaction();
                let mut lines = vec![
                    format!("{} greets {domain}", ctx.hostname),
                    format!("SIZE {}", ctx.max_message_size),
                    "8BITMIME".to_string(),
                    "PIPELINING".to_string(),
                    "ENHANCEDSTATUSCODES".to_string(),
                ];
                if ctx.tls.is_some() && !tls_active {
                    lines.push("STARTTLS".into());
                }
                if auth_allowed {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                let n = lines.len();
                let text: Vec<String> = lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}", if i + 1 == n { ' ' } else { '-' }))
                    .collect();
                reply(&mut io, &text.join("\r\n")).await?;
            }
            Command::StartTls => {
                if tls_active {
                    reply(&mut io, "503 5.5.1 TLS already active").await?;
                } else if ctx.tls.is_none() {
                    reply(
                        &mut io,
                        "502 5.5.1 STARTTLS not available: no certificate configured",
                    )
                    .await?;
                } else {
                    reply(&mut io, "220 2.0.0 Ready to start TLS").await?;
                    // The client waits for our 220 before the handshake, so nothing is buffered.
                    return Ok(Some(io.into_inner()));
                }
            }
            Command::Auth { mechanism, initial } => {
                if !ctx.auth_accept_any {
                    reply(
                        &mut io,
                        "502 5.5.1 AUTH not enabled (set MP_SMTP_AUTH_ACCEPT_ANY)",
                    )
                    .await?;
                } else if !auth_allowed {
                    reply(&mut io, "530 5.7.0 Must issue a STARTTLS command first (or set MP_SMTP_AUTH_ALLOW_INSECURE)").await?;
                } else if s.username.is_some() {
                    reply(&mut io, "503 5.5.1 Already authenticated").await?;
                } else if s.mail_from.is_some() {
                    reply(
                        &mut io,
                        "503 5.5.1 AUTH not allowed during a mail transaction",
                    )
                    .await?;
                } else {
                    match auth(&mut io, &mechanism, initial).await? {
                        Ok(user) => {
                            s.username = Some(user);
                            reply(&mut io, "235 2.7.0 Authentication successful").await?;
                        }
                        Err(msg) => reply(&mut io, msg).await?,
                    }
                }
            }
            Command::Mail { from, size } => {
                if !s.greeted {
                    reply(&mut io, "503 5.5.1 Send HELO/EHLO first").await?;
                } else if s.mail_from.is_some() {
                    reply(&mut io, "503 5.5.1 Nested MAIL command").await?;
                } else if size.is_some_and(|n| n > ctx.max_message_size as u64) {
                    ctx.store
                        .stats
                        .smtp_rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    reply(
                        &mut io,
                        &format!(
                            "552 5.3.4 Message size exceeds the limit of {} bytes",
                            ctx.max_message_size
                        ),
                    )
                    .await?;
                } else {
                    s.mail_from = Some(from);
                    reply(&mut io, "250 2.1.0 Ok").await?;
                }
            }
            Command::Rcpt(to) => {
                if s.mail_from.is_none() {
                    reply(&mut io, "503 5.5.1 Need MAIL before RCPT").await?;
                } else if s.rcpt.len() >= MAX_RECIPIENTS {
                    reply(&mut io, "452 4.5.3 Too many recipients").await?;
                } else {
                    s.rcpt.push(to);
                    reply(&mut io, "250 2.1.5 Ok").await?;
                }
            }
            Command::Data => {
                if s.mail_from.is_none() || s.rcpt.is_empty() {
                    reply(&mut io, "503 5.5.1 Need MAIL and RCPT before DATA").await?;
                    continue;
                }
                reply(&mut io, "354 Start mail input; end with <CR><LF>.<CR><LF>").await?;
                let Some(body) = read_data(&mut io, ctx.max_message_size).await? else {
                    ctx.store
                        .stats
                        .smtp_rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    s.reset_transaction();
                    reply(
                        &mut io,
                        &format!(
                            "552 5.3.4 Message size exceeds the limit of {} bytes",
                            ctx.max_message_size
                        ),
                    )
                    .await?;
                    continue;
                };
                let env = Envelope {
                    mail_from: s.mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut s.rcpt),
                    username: s.username.clone(),
                };
                let id = crate::util::random_id(22);
                let msg = parse_message(id.clone(), body, &env, OffsetDateTime::now_utc());
                ctx.store.add(msg);
                reply(&mut io, &format!("250 2.0.0 Ok: queued as {id}")).await?;
            }
            Command::Rset => {
                s.reset_transaction();
                reply(&mut io, "250 2.0.0 Ok").await?;
            }
            Command::Noop => reply(&mut io, "250 2.0.0 Ok").await?,
            Command::Vrfy => {
                reply(
                    &mut io,
                    "252 2.5.0 Cannot VRFY user, but will accept message",
                )
                .await?
            }
            Command::Help => {
                reply(
                    &mut io,
                    "214 2.0.0 Commands: HELO EHLO AUTH STARTTLS MAIL RCPT DATA RSET NOOP QUIT",
                )
                .await?
            }
            Command::Quit => {
                reply(&mut io, "221 2.0.0 Bye").await?;
                return Ok(None);
            }
        }
    }
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    text: &str,
) -> std::io::Result<()> {
    let w = io.get_mut();
    w.write_all(text.as_bytes()).await?;
    w.write_all(b"\r\n").await?;
    w.flush().await
}

/// Reads the DATA section, undoing dot-stuffing. Returns None (after consuming up to the final
/// dot) when the message is larger than `max`.
async fn read_data<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut line = Vec::with_capacity(1024);
    let mut oversize = false;
    loop {
        match read_line(r, &mut line, max + 3).await? {
            Line::Eof => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Line::TooLong => {
                oversize = true;
                continue;
            }
            Line::Complete => {}
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        if oversize {
            continue;
        }
        let content = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        if body.len() + content.len() > max {
            oversize = true;
            body = Vec::new();
            continue;
        }
        body.extend_from_slice(content);
    }
    Ok(if oversize { None } else { Some(body) })
}

/// Runs AUTH PLAIN or LOGIN; with accept-any, any well-formed credentials pass.
async fn auth<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    mechanism: &str,
    initial: Option<String>,
) -> std::io::Result<Result<String, &'static str>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut line = Vec::new();
    let mut prompt =
        async |io: &mut BufReader<S>, challenge: &str| -> std::io::Result<Option<String>> {
            reply(io, &format!("334 {challenge}")).await?;
            match read_line(io, &mut line, MAX_COMMAND_LINE).await? {
                Line::Complete => Ok(Some(String::from_utf8_lossy(&line).trim().to_string())),
                _ => Ok(None),
            }
        };
    const BAD: &str = "501 5.5.2 Cannot decode the response";
    const CANCELLED: &str = "501 5.0.0 Authentication cancelled";
    match mechanism {
        "PLAIN" => {
            let resp = match initial {
                Some(r) => r,
                None => match prompt(io, "").await? {
                    Some(r) => r,
                    None => return Ok(Err(BAD)),
                },
            };
            if resp == "*" {
                return Ok(Err(CANCELLED));
            }
            let Ok(raw) = b64.decode(resp.as_bytes()) else {
                return Ok(Err(BAD));
            };
            let parts: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
            if parts.len() != 3 || parts[1].is_empty() {
                return Ok(Err("501 5.5.2 PLAIN expects authzid\\0user\\0password"));
            }
            Ok(Ok(String::from_utf8_lossy(parts[1]).into_owned()))
        }
        "LOGIN" => {
            let user = match initial {
                Some(r) => r,
                None => match prompt(io, "VXNlcm5hbWU6").await? {
                    Some(r) => r,
                    None => return Ok(Err(BAD)),
                },
            };
            if user == "*" {
                return Ok(Err(CANCELLED));
            }
            let Ok(user) = b64.decode(user.as_bytes()) else {
                return Ok(Err(BAD));
            };
            let Some(pass) = prompt(io, "UGFzc3dvcmQ6").await? else {
                return Ok(Err(BAD));
            };
            if pass == "*" {
                return Ok(Err(CANCELLED));
            }
            if b64.decode(pass.as_bytes()).is_err() || user.is_empty() {
                return Ok(Err(BAD));
            }
            Ok(Ok(String::from_utf8_lossy(&user).into_owned()))
        }
        _ => Ok(Err(
            "504 5.5.4 Unrecognized authentication type (use PLAIN or LOGIN)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_common_commands() {
        assert_eq!(
            parse_command("EHLO client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(parse_command("helo x\r\n"), Ok(Command::Helo("x".into())));
        assert_eq!(
            parse_command("MAIL FROM:<a@b.c> SIZE=1234 BODY=8BITMIME"),
            Ok(Command::Mail {
                from: "a@b.c".into(),
                size: Some(1234)
            })
        );
        assert_eq!(
            parse_command("mail from: <>"),
            Ok(Command::Mail {
                from: "".into(),
                size: None
            })
        );
        assert_eq!(
            parse_command("RCPT TO:<x@y.z>"),
            Ok(Command::Rcpt("x@y.z".into()))
        );
        assert_eq!(
            parse_command("RCPT TO:x@y.z"),
            Ok(Command::Rcpt("x@y.z".into()))
        );
        assert_eq!(
            parse_command("AUTH PLAIN AHVAcA=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AHVAcA==".into())
            })
        );
        assert_eq!(parse_command("DATA"), Ok(Command::Data));
        assert_eq!(parse_command("NOOP whatever"), Ok(Command::Noop));
    }

    #[test]
    fn garbage_is_unrecognized_and_bad_arguments_are_syntax_errors() {
        assert_eq!(parse_command("FROBNICATE"), Err(ParseError::Unrecognized));
        assert_eq!(parse_command(""), Err(ParseError::Unrecognized));
        assert!(matches!(parse_command("EHLO"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse_command("MAIL TO:<a@b>"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_command("MAIL FROM:<a@b> SIZE=big"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_command("RCPT TO:<>"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_command("DATA now"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_command("MAIL FROM:<a b@c>"),
            Err(ParseError::Syntax(_))
        ));
    }

    #[tokio::test]
    async fn data_is_dot_unstuffed_and_size_limited() {
        let input: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nNOOP\r\n";
        let mut r = BufReader::new(input);
        let body = read_data(&mut r, 1000).await.unwrap().unwrap();
        assert_eq!(body, b"Subject: x\r\n\r\n.leading dot\r\n");
        // The command after the terminating dot is still there for the session.
        let mut line = Vec::new();
        read_line(&mut r, &mut line, 100).await.unwrap();
        assert_eq!(line, b"NOOP\r\n");

        let big = format!("{}\r\n.\r\nQUIT\r\n", "x".repeat(50));
        let mut r = BufReader::new(big.as_bytes());
        assert!(read_data(&mut r, 20).await.unwrap().is_none());
        read_line(&mut r, &mut line, 100).await.unwrap();
        assert_eq!(line, b"QUIT\r\n");
    }

    fn verb_case(v: &'static str) -> impl Strategy<Value = String> {
        prop::collection::vec(any::<bool>(), v.len()).prop_map(move |upper| {
            v.chars()
                .zip(upper)
                .map(|(c, u)| {
                    if u {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect()
        })
    }

    proptest! {
        // Whatever arrives on the wire, the parser answers Ok or a 500/501 class error.
        #[test]
        fn never_panics(line in ".{0,300}") {
            let _ = parse_command(&line);
        }

        #[test]
        fn never_panics_on_command_like_input(verb in prop::sample::select(vec!["MAIL", "RCPT", "AUTH", "EHLO", "HELO"]), rest in "[ -~]{0,80}") {
            let _ = parse_command(&format!("{verb} {rest}"));
        }

        // Well-formed MAIL/RCPT lines round-trip whatever the verb's case and with or without
        // angle brackets.
        #[test]
        fn mail_and_rcpt_round_trip(
            mail in verb_case("mail"),
            rcpt in verb_case("rcpt"),
            local in "[a-zA-Z0-9._%+-]{1,20}",
            domain in "[a-z0-9-]{1,12}\\.[a-z]{2,6}",
            size in prop::option::of(0u64..100_000_000),
            brackets in any::<bool>(),
        ) {
            let addr = format!("{local}@{domain}");
            let path = if brackets { format!("<{addr}>") } else { addr.clone() };
            let size_param = size.map(|n| format!(" SIZE={n}")).unwrap_or_default();
            prop_assert_eq!(
                parse_command(&format!("{mail} FROM:{path}{size_param}\r\n")),
                Ok(Command::Mail { from: addr.clone(), size })
            );
            prop_assert_eq!(parse_command(&format!("{rcpt} to:{path}")), Ok(Command::Rcpt(addr)));
        }
    }
}
