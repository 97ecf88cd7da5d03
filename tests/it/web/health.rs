//! `status` of a web node: what is checked and how failures read.

use std::net::{IpAddr, Ipv4Addr};

use hainit::platform::OsId;
use hainit::roles::health;
use hainit::status::Level;
use hainit::system::{FakeSystem, HttpReply, Output};
use serde_json::Value;

use super::{web_yaml, Node, SHARE};
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
    sys.add_file("/proc/self/mountinfo", mountinfo(SHARE), 0o444);
    let n = node();
    let items = health(&n.inv, n.inv.platform.platform(), &n.config, &sys);
    let names: Vec<&str> = items.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["tcp-timestamps", "nginx", "php-fpm", "shared-storage", "healthz", "db-vip", "wordpress"]);
    for h in &items[1..] {
        assert_eq!(h.level, Level::Ok, "{h:?}");
    }
    assert!(items[2].detail.contains("php8.2-fpm") && items[5].detail.contains("10.0.1.10:3306"), "{items:?}");
    assert_eq!(items[3].detail, format!("{SHARE} mounted on {UPLOADS} (nfs4)"));
}

const UPLOADS: &str = "/var/www/wordpress/wp-content/uploads";

fn mountinfo(source: &str) -> String {
    format!(
        "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
         51 22 0:48 / {UPLOADS} rw,relatime shared:30 - nfs4 {source} rw,vers=4.1\n"
    )
}

#[test]
fn the_shared_storage_item_says_what_is_mounted_and_healthz_why_it_fails() {
    let n = node();
    let level = |sys: &FakeSystem| {
        let items = health(&n.inv, n.inv.platform.platform(), &n.config, sys);
        let h = items.iter().find(|h| h.name == "shared-storage").unwrap();
        (h.level, h.detail.clone())
    };
    let sys = FakeSystem::new("web-1");
    sys.reply(&["systemctl", "is-active"], Output::ok("active\n"));
    sys.add_file("/proc/self/mountinfo", "22 1 254:0 / / rw - ext4 /dev/vda rw\n", 0o444);
    assert_eq!(level(&sys), (Level::Fail, format!("{SHARE} is not mounted on {UPLOADS}")));
    sys.add_file("/proc/self/mountinfo", mountinfo("10.9.9.9:/other"), 0o444);
    assert_eq!(level(&sys), (Level::Fail, format!("{UPLOADS} is mounted from 10.9.9.9:/other, not {SHARE}")));
    // healthz.php's reasons, one line each, end up in the item.
    let body = format!("shared storage: nothing is mounted on {UPLOADS} (the share {SHARE})\nphp: no mysqli\n");
    sys.serve_http("http://127.0.0.1/healthz", reply(503, None, &body));
    let items = health(&n.inv, n.inv.platform.platform(), &n.config, &sys);
    let healthz = items.iter().find(|h| h.name == "healthz").unwrap();
    assert_eq!(healthz.level, Level::Fail);
    assert!(
        healthz.detail.ends_with(&format!(
            "answers 503 (the load balancer wants 200): shared storage: nothing is \
                                            mounted on {UPLOADS} (the share {SHARE}); php: no mysqli"
        )),
        "{healthz:?}"
    );

    // A local share is one node's: a warning, whatever is mounted.
    let yaml = web_yaml("/usr/share/hainit/wordpress.tar.gz", &"a".repeat(64), "  share: local\n");
    let tags = [("hainit-role", "web"), ("hainit-cluster", "wpcluster"), ("hainit-vip", "10.0.1.10")];
    let local = Node::with_tags(OsId::Debian12, "web-1", "10.0.2.4", &tags, &yaml, crate::common::SECRET);
    let items = health(&local.inv, local.inv.platform.platform(), &local.config, &sys);
    let h = items.iter().find(|h| h.name == "shared-storage").unwrap();
    assert_eq!(
        (h.level, h.detail.as_str()),
        (Level::Warn, "local: /var/www/wordpress/wp-content/uploads is this node's alone (web.share)")
    );
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
    assert_eq!(
        names,
        ["tcp-timestamps", "nginx", "php-fpm", "shared-storage", "healthz", "db-vip", "wordpress", "secrets"]
    );
}
