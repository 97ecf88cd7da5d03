//! The IMDS client against a real HTTP server on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hainit::error::ErrorKind;
use hainit::imds::{ImdsClient, API_VERSION};

use crate::common::db_doc;
use crate::common::fake_imds::{Document, FakeImds, Fault};

fn server() -> FakeImds {
    FakeImds::start(Document::Text(db_doc("db-a", "10.0.1.4")))
}

fn raw_get(server: &FakeImds, request: &str) -> String {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn fake_refuses_what_the_real_service_refuses() {
    let s = server();
    let no_header = raw_get(&s, "GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(no_header.starts_with("HTTP/1.1 400"), "{no_header}");
    let no_version = raw_get(&s, "GET /metadata/instance HTTP/1.1\r\nMetadata: true\r\n\r\n");
    assert!(no_version.starts_with("HTTP/1.1 400"), "{no_version}");
    let forwarded = raw_get(
        &s,
        "GET /metadata/instance?api-version=1 HTTP/1.1\r\nMetadata: true\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    );
    assert!(forwarded.starts_with("HTTP/1.1 400"), "{forwarded}");
}

/// What azure-events-az asks (the fast timing profile): pending events, and its approval of them.
#[test]
fn fake_serves_scheduled_events_and_takes_their_approval() {
    let s = server();
    let events = raw_get(&s, "GET /metadata/scheduledevents?api-version=2019-08-01 HTTP/1.1\r\nMetadata: true\r\n\r\n");
    assert!(
        events.starts_with("HTTP/1.1 200") && events.ends_with("{\"DocumentIncarnation\":0,\"Events\":[]}"),
        "{events}"
    );
    let body = "{\"StartRequests\": [{\"EventId\": \"e1\"}]}";
    let approve = raw_get(
        &s,
        &format!(
            "POST /metadata/scheduledevents?api-version=2019-08-01 HTTP/1.1\r\nMetadata: true\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(approve.starts_with("HTTP/1.1 200"), "{approve}");
    let post = raw_get(&s, "POST /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nMetadata: true\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 400"), "only Scheduled Events take a POST: {post}");
}

#[test]
fn sends_the_header_and_the_pinned_api_version() {
    let s = server();
    let doc = ImdsClient::new(&s.url(), Duration::from_secs(5)).fetch_instance().unwrap();
    assert_eq!(doc.vm_name, "vm-db-a");
    assert_eq!(doc.computer_name.as_deref(), Some("db-a"));
    assert_eq!(doc.private_ip.to_string(), "10.0.1.4");
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("Metadata"), Some("true"));
    assert_eq!(reqs[0].target, format!("/metadata/instance?api-version={API_VERSION}"));
    assert_eq!(reqs[0].header("X-Forwarded-For"), None);
}

#[test]
fn transient_failures_are_retried_until_an_answer() {
    let s = server();
    for f in [Fault::Status(429), Fault::Status(500), Fault::Status(410), Fault::Status(503), Fault::Drop] {
        s.push(f);
    }
    let doc = ImdsClient::new(&s.url(), Duration::from_secs(30)).fetch_instance().unwrap();
    assert_eq!(doc.vm_name, "vm-db-a");
    assert_eq!(s.requests().len(), 6, "five failures then the answer");
}

#[test]
fn caller_errors_fail_at_once_as_bad_input() {
    for status in [400, 404, 403] {
        let s = server();
        s.push(Fault::Status(status));
        let started = Instant::now();
        let e = ImdsClient::new(&s.url(), Duration::from_secs(30)).fetch_instance().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Input, "{status}: {e}");
        assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
        assert_eq!(s.requests().len(), 1, "{status} is not retried");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[test]
fn garbage_is_bad_input_that_says_what_was_wrong() {
    let s = server();
    s.push(Fault::Garbage);
    let e = ImdsClient::new(&s.url(), Duration::from_secs(5)).fetch_instance().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input);
    assert!(e.to_string().contains("not JSON") && e.to_string().contains("<html>"), "{e}");
    let s = server();
    s.push(Fault::Body(r#"{"compute": {"name": "x"}}"#.into()));
    let e = ImdsClient::new(&s.url(), Duration::from_secs(5)).fetch_instance().unwrap_err();
    assert!(e.to_string().contains("no network object"), "{e}");
}

#[test]
fn a_hanging_service_ends_in_a_timeout_shortly_after_the_deadline() {
    let s = server();
    s.always(Some(Fault::Hang(Duration::from_secs(30))));
    let started = Instant::now();
    let e = ImdsClient::new(&s.url(), Duration::from_secs(2)).fetch_instance().unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    // Bounds wide enough for a loaded CI machine; the hang alone would take 30 s.
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(10), "took {took:?}");
    assert!(e.to_string().contains("within 2 s"), "{e}");
}

#[test]
fn a_failing_service_ends_in_a_timeout_with_the_last_error() {
    let s = server();
    s.always(Some(Fault::Status(500)));
    let started = Instant::now();
    let e = ImdsClient::new(&s.url(), Duration::from_secs(2)).fetch_instance().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(e.to_string().contains("last: HTTP 500"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let n = s.requests().len();
    assert!((3..=12).contains(&n), "backoff keeps the request count modest, got {n}");
}

#[test]
fn nothing_listening_is_a_timeout() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // closed again
    let e = ImdsClient::new(&format!("http://{addr}"), Duration::from_secs(1)).fetch_instance().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
}

#[test]
fn managed_identity_probe() {
    let s = server();
    let client = ImdsClient::new(&s.url(), Duration::from_secs(5));
    assert!(!client.has_managed_identity().unwrap());
    s.set_identity(true);
    assert!(client.has_managed_identity().unwrap());
    s.push(Fault::Status(404)); // "IMDS is updating" on this endpoint: retried
    assert!(client.has_managed_identity().unwrap());
    let token_req = s.requests().into_iter().last().unwrap();
    assert!(token_req.target.starts_with("/metadata/identity/oauth2/token?api-version=2018-02-01&resource="));
}

/// "Has an identity" is never a guess: only the documented "no identity" answers (400-403) are
/// false; a failing IMDS is retried and then a timeout (exit 3), an odd answer is an error.
#[test]
fn the_identity_probe_tells_no_identity_from_a_failing_imds() {
    for status in [400, 401, 403] {
        let s = server();
        s.set_identity(true);
        s.push(Fault::Status(status));
        assert!(!ImdsClient::new(&s.url(), Duration::from_secs(5)).has_managed_identity().unwrap(), "{status}");
    }
    for fault in [Fault::Status(500), Fault::Status(503), Fault::Status(429), Fault::Drop] {
        let s = server();
        s.set_identity(true);
        s.always(Some(fault));
        let e = ImdsClient::new(&s.url(), Duration::from_secs(1)).has_managed_identity().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert!(e.to_string().contains("/metadata/identity/oauth2/token"), "{e}");
    }
    let s = server();
    s.set_identity(true);
    s.push(Fault::Status(405));
    let e = ImdsClient::new(&s.url(), Duration::from_secs(5)).has_managed_identity().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input, "{e}");
    let s = server();
    s.set_identity(true);
    s.push(Fault::Body("<html>a captive portal</html>".into()));
    let e = ImdsClient::new(&s.url(), Duration::from_secs(5)).has_managed_identity().unwrap_err();
    assert!(e.to_string().contains("without an access_token"), "{e}");
}
