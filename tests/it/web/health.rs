//! `status` of a web node: what is checked and how failures read.

use std::net::{IpAddr, Ipv4Addr};

use hainit::platform::OsId;
use hainit::roles::health;
use hainit::status::Level;
use hainit::system::{FakeSystem, HttpReply, Output};
use serde_json::Value;

use super::{web_yaml, Node};
use crate::common::fake_imds::{Document, FakeImds};
use crate::common::{hainit, stdout, web_doc, TestRoot};

fn reply(status: u16, location: Option<&str>, body: &str) -> HttpReply {
    HttpReply { status, location: location.map(str::to_string), body: body.into() }
}

fn node() -> Node {
    Node::standard(OsId::Debian12, &web_yaml("/usr/share/hainit/wordpress.tar.gz", &"a".repeat(64), ""))
}

#[test]
fn a_healthy_web_node() {
    let sys = FakeSystem::new("web-1");
    sys.reply(&["systemctl", "is-active"], Output::ok("active\n"));
    sys.serve_http("http://127.0.0.1/healthz", reply(200, None, "ok\n"));
    sys.serve_http("http://127.0.0.1/", reply(200, None, "<html>Hello world!</html>"));
    sys.open_port(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10)), 3306);
    let n = node();
    let items = health(&n.inv, n.inv.platform.platform(), &n.config, &sys);
    let names: Vec<&str> = items.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["tcp-timestamps", "nginx", "php-fpm", "healthz", "db-vip", "wordpress"]);
    for h in &items[1..] {
        assert_eq!(h.level, Level::Ok, "{h:?}");
    }
    assert!(items[2].detail.contains("php8.2-fpm") && items[4].detail.contains("10.0.1.10:3306"), "{items:?}");
}

#[test]
fn failures_name_what_is_wrong() {
    let sys = FakeSystem::new("web-1");
    sys.on(&["systemctl", "is-active"], |_, c| Output {
        code: Some(3),
        stdout: if c.argv_redacted()[2] == "nginx" { "failed\n" } else { "active\n" }.into(),
        stderr: String::new(),
    });
    sys.serve_http("http://127.0.0.1/", reply(302, Some("http://10.0.2.4/wp-admin/install.php"), ""));
    let n = node();
    let items = health(&n.inv, n.inv.platform.platform(), &n.config, &sys);
    let level = |name: &str| items.iter().find(|h| h.name == name).map(|h| (h.level, h.detail.clone())).unwrap();
    assert_eq!(level("nginx"), (Level::Fail, "nginx failed".into()));
    assert_eq!(level("php-fpm").0, Level::Ok);
    assert!(level("healthz").1.contains("connection refused"), "{items:?}");
    assert_eq!(level("db-vip"), (Level::Fail, "10.0.1.10:3306 does not accept connections".into()));
    assert_eq!(level("wordpress"), (Level::Fail, "not installed yet (redirects to wp-admin/install.php)".into()));
}

#[test]
fn status_json_lists_the_web_items() {
    let root = TestRoot::new();
    let imds = FakeImds::start(Document::Text(web_doc("web-1", "10.0.2.4")));
    let out = hainit(&imds.url(), root.path(), "debian12", &["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "nothing runs on a test root: FAIL items");
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    // The test root's config holds the shared secret: a web node warns about that too.
    assert_eq!(names, ["tcp-timestamps", "nginx", "php-fpm", "healthz", "db-vip", "wordpress", "secrets"]);
}
