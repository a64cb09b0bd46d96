//! `harness`: production-parity packaging, test runs and gated deploys for Python web apps headed
//! for Passenger shared webhosting. See DESIGN.md in the shared folder and docs/ARCHITECTURE.md.
pub mod ci;
pub mod cli;
pub mod config;
pub mod deploy;
pub mod docker;
pub mod env_report;
pub mod envfile;
pub mod error;
pub mod events;
pub mod fsutil;
pub mod gate;
pub mod gatekeeper;
pub mod git;
pub mod history;
pub mod images;
pub mod init;
pub mod ledger;
pub mod model;
pub mod package;
pub mod parity;
pub mod probe;
pub mod remote;
pub mod requirements;
pub mod run;
pub mod stack;
pub mod tls;
