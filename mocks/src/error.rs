//! The one error type the mocks hand to their callers. Each variant carries what the message
//! needs (the path or address) and knows whether it is the caller's input or the environment.
use std::net::SocketAddr;
use std::path::PathBuf;

/// What kind of failure this is, so the CLI can pick an exit code without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad flags, a bad data/zones file, or a bad certificate file.
    BadInput,
    /// The environment refused: the port is taken, no runtime, signals unavailable.
    Environment,
}

#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    BadFile { path: PathBuf, message: String },
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("{0}")]
    BadArgument(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl MockError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            MockError::Bind { .. } | MockError::Io { .. } => ErrorKind::Environment,
            MockError::ReadFile { .. }
            | MockError::BadFile { .. }
            | MockError::Tls(_)
            | MockError::BadArgument(_) => ErrorKind::BadInput,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            MockError::Bind { .. } => {
                Some("pick another --port, or --port 0 for a free one".to_string())
            }
            MockError::BadFile { .. } => Some("see mocks/README.md for the file format".to_string()),
            MockError::Tls(_) => Some(
                "--tls-cert and --tls-key must be PEM files: a certificate chain and its private key"
                    .to_string(),
            ),
            _ => None,
        }
    }
}
