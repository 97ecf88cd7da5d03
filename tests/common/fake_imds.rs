//! A fake Azure Instance Metadata Service: a real HTTP/1.1 server on 127.0.0.1 that, like the
//! real one, answers 400 to requests without `Metadata: true`, without `api-version`, or with
//! `X-Forwarded-For`. It also serves Scheduled Events (none pending; a POST approving events
//! is accepted), which ocf:heartbeat:azure-events-az polls. Tests script faults (statuses, garbage, hangs, dropped connections) and
//! read back every request. Used by the integration tests and, as `examples/fake-imds.rs`, by
//! the benchmark and the lab. Standard library only.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A scripted answer for the next valid request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and a short JSON error body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with this body.
    Body(String),
    /// Accept and say nothing for this long, then close.
    Hang(Duration),
    /// Close the connection without answering.
    Drop,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Where the instance document comes from.
#[derive(Debug, Clone)]
pub enum Document {
    Text(String),
    /// Read on every request, so a lab can change tags while VMs run.
    File(PathBuf),
}

struct State {
    document: Document,
    identity: bool,
    faults: VecDeque<Fault>,
    /// Answer every valid request with this fault once the queue is empty.
    always: Option<Fault>,
    requests: Vec<Request>,
}

pub struct FakeImds {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl FakeImds {
    pub fn start(document: Document) -> FakeImds {
        FakeImds::bind("127.0.0.1:0", document).expect("bind 127.0.0.1:0")
    }

    pub fn bind(addr: &str, document: Document) -> std::io::Result<FakeImds> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            document,
            identity: false,
            faults: VecDeque::new(),
            always: None,
            requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let st = st.clone();
                    thread::spawn(move || serve(conn, &st));
                }
            }
        });
        Ok(FakeImds { addr, state, stop, accept: Some(accept) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn push(&self, fault: Fault) -> &Self {
        self.state.lock().unwrap().faults.push_back(fault);
        self
    }

    pub fn always(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().always = fault;
    }

    pub fn set_identity(&self, on: bool) {
        self.state.lock().unwrap().identity = on;
    }

    pub fn set_document(&self, document: Document) {
        self.state.lock().unwrap().document = document;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Block until a stop is requested from another thread (standalone use).
    pub fn join(mut self) {
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeImds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&conn) else {
        return;
    };
    let (status, body) = {
        let mut st = state.lock().unwrap();
        st.requests.push(request.clone());
        match validate(&request) {
            Err(why) => (400, format!("{{\"error\": \"Bad request. {why}\"}}")),
            Ok(path) => {
                let fault = st.faults.pop_front().or_else(|| st.always.clone());
                match fault {
                    Some(Fault::Status(s)) => (s, format!("{{\"error\": \"injected {s}\"}}")),
                    Some(Fault::Garbage) => (200, "<html>this is not the IMDS document</html>".to_string()),
                    Some(Fault::Body(b)) => (200, b),
                    Some(Fault::Hang(d)) => {
                        drop(st);
                        thread::sleep(d);
                        return;
                    }
                    Some(Fault::Drop) => return,
                    None => answer(&st, &path),
                }
            }
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        410 => "Gone",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let request = Request { method, target, headers };
    // A body (Scheduled Events' StartRequests) is read so the client sees an answer, not a reset.
    let length: usize = request.header("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length.min(1 << 16)];
    std::io::Read::read_exact(&mut reader, &mut body).ok()?;
    Some(request)
}

/// The real service's request rules; returns the path on success.
fn validate(r: &Request) -> Result<String, &'static str> {
    if r.header("Metadata") != Some("true") {
        return Err("Required metadata header not specified");
    }
    if r.header("X-Forwarded-For").is_some() {
        return Err("Request contains X-Forwarded-For header");
    }
    let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
    let has_version = query.split('&').any(|kv| kv.strip_prefix("api-version=").is_some_and(|v| !v.is_empty()));
    if !has_version {
        return Err("api-version is invalid or was not specified in the request");
    }
    let approves_events = r.method == "POST" && path == SCHEDULED_EVENTS;
    if r.method != "GET" && !approves_events {
        return Err("Only GET is allowed");
    }
    Ok(path.to_string())
}

/// Scheduled Events (azure-events-az polls it with api-version 2019-08-01).
const SCHEDULED_EVENTS: &str = "/metadata/scheduledevents";

fn answer(st: &State, path: &str) -> (u16, String) {
    match path {
        SCHEDULED_EVENTS => (200, "{\"DocumentIncarnation\":0,\"Events\":[]}".into()),
        "/metadata/instance" => match &st.document {
            Document::Text(t) => (200, t.clone()),
            Document::File(p) => match std::fs::read_to_string(p) {
                Ok(t) => (200, t),
                Err(_) => (404, "{\"error\": \"document file missing\"}".into()),
            },
        },
        "/metadata/identity/oauth2/token" if st.identity => (
            200,
            "{\"access_token\":\"fake-token\",\"expires_in\":\"3599\",\"resource\":\"https://management.azure.com/\",\"token_type\":\"Bearer\"}".into(),
        ),
        "/metadata/identity/oauth2/token" => (
            400,
            "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}".into(),
        ),
        _ => (404, "{\"error\": \"Not found\"}".into()),
    }
}
