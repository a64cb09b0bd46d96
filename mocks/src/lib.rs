//! Mock servers used by the harness stack: Netcup CCP DNS API, MaxMind GeoIP2 web service and a
//! Mailpit-compatible mail catcher. Each is a library server that starts on a listener and returns
//! a handle that knows its address and shuts down cleanly; `cli` turns each into a command.
pub mod cli;
mod error;
pub mod geoip;
pub mod mailpit;
pub mod netcup;
mod server;
mod util;

pub use error::{ErrorKind, MockError};
