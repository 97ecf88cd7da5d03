//! All integration tests in one binary (one link on a 2-core machine).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod azure;
mod boot;
mod cli;
mod db;
mod engine;
mod imds;
mod lab;
mod web;
