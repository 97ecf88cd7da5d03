//! Standalone fake IMDS for the benchmark and the lab:
//! `fake-imds --listen 127.0.0.1:8000 --document vm.json [--identity]`.
//! The document file is re-read on every request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/fake_imds.rs"]
mod fake_imds;

use fake_imds::{Document, FakeImds};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let (Some(listen), Some(document)) = (value("--listen"), value("--document")) else {
        eprintln!("usage: fake-imds --listen ADDR:PORT --document FILE [--identity]");
        std::process::exit(2);
    };
    let server = match FakeImds::bind(&listen, Document::File(document.into())) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-imds: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    server.set_identity(args.iter().any(|a| a == "--identity"));
    eprintln!("fake-imds: serving {} on {}", value("--document").unwrap_or_default(), server.url());
    server.join();
}
