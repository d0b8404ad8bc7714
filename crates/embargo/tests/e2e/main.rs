//! End-to-end tests of the `embargo` binary with real peers (swaks, Python's smtplib,
//! PostgreSQL). Each runs on SQLite and, where PostgreSQL is available, on PostgreSQL.

mod browser;
mod cli;
mod cluster;
mod command_line;
mod disclosure;
mod fixes;
mod mail;
mod offboarding;
mod ops;
mod package;
mod partner_portal;
mod partners;
mod smtp;
mod views;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_embargo");
