//! The real stack on loopback: MariaDB, php-fpm and nginx from Debian's packages, WordPress from
//! scripts/wordpress-tarball.sh, hainit's steps applied with HostSystem under a test root and the
//! install step run for real (twice at once, as two web nodes would). The site answers, hainit's
//! nginx rules hold, and a post written through WordPress's REST API appears on the front page.
//! Everything the test starts listens on its own 127.0.0.x address and is stopped by pid.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hainit::engine::{self, Outcome, Step};
use hainit::platform::OsId;
use hainit::roles::web;
use hainit::secrets::Purpose;
use hainit::system::{HostSystem, Root};

use super::Node;
use crate::common::daemon::Daemon;
use crate::common::{output_with_stdin, SECRET};

/// A 127.0.0.x address of this test run (other tests and helpers use other ones).
fn loopback() -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (std::process::id() % 250) as u8)
}

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

fn wait_for(what: &str, t: &Path, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} not ready after {timeout:?}\n{}", logs_of(t));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sql(socket: &Path, statements: &str) -> String {
    let out = output_with_stdin(
        Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "-N", "-B"])
            .arg(format!("--socket={}", socket.display())),
        statements.as_bytes(),
    );
    assert!(out.status.success(), "{statements}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Copy of a rendered file with the sandbox's paths and addresses put in.
fn sandboxed(rendered: &Path, out: &Path, swaps: &[(&str, String)]) {
    let mut text = std::fs::read_to_string(rendered).unwrap();
    for (from, to) in swaps {
        assert!(text.contains(from), "{} has no {from:?}", rendered.display());
        text = text.replace(from, to);
    }
    std::fs::write(out, text).unwrap();
}

/// A minimal HTTP client that keeps WordPress's cookies.
struct Browser {
    agent: ureq::Agent,
    base: String,
    cookies: Vec<String>,
    location: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Browser {
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let cookies = vec!["wordpress_test_cookie=WP%20Cookie%20check".into()];
        Browser { agent, base: base.to_string(), cookies, location: None }
    }

    fn keep_cookies(&mut self, r: &ureq::http::Response<ureq::Body>) {
        self.location = r.headers().get("location").map(|l| l.to_str().unwrap_or_default().to_string());
        for v in r.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap().to_string();
            if !pair.ends_with('=') && !pair.contains("=deleted") {
                self.cookies.push(pair);
            }
        }
    }

    fn get(&mut self, path: &str) -> (u16, String) {
        let mut r =
            self.agent.get(format!("{}{path}", self.base)).header("Cookie", self.cookies.join("; ")).call().unwrap();
        self.keep_cookies(&r);
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
    }

    fn post(&mut self, path: &str, content_type: &str, body: &str, extra: &[(&str, &str)]) -> (u16, String) {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookies.join("; "))
            .header("Content-Type", content_type);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let mut r = req.send(body).unwrap();
        self.keep_cookies(&r);
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
    }
}

#[test]
fn wordpress_serves_a_post_written_through_its_rest_api() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the loopback stack needs root (php-fpm and nginx workers run as www-data)"
    );
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap(); // www-data walks into root/
    let r = t.join("root");
    for dir in [r.join("etc"), r.join("usr/share/hainit"), t.join("logs"), t.join("conf.d")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::copy("/etc/passwd", r.join("etc/passwd")).unwrap();
    std::fs::copy("/etc/group", r.join("etc/group")).unwrap();

    // WordPress from Debian's package, packed the way the image bakes it.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/wordpress-tarball.sh");
    let tarball = r.join("usr/share/hainit/wordpress.tar.gz");
    let sha = sh(Command::new(&script).arg(&tarball)).trim().to_string();
    assert_eq!(sha.len(), 64, "{sha}");

    // MariaDB will listen on its own socket and 127.0.0.x port: the "VIP".
    let ip = loopback();
    let (db_port, http_port) = (free_port(ip), free_port(ip));
    let socket = t.join("mysqld.sock");
    let site = format!("http://{ip}:{http_port}");
    let yaml = format!(
        "web:\n  wordpress_sha256: {sha}\n  site_url: {site}\n  site_title: hainit loopback\n  admin_user: wpadmin\n  \
         admin_email: admin@example.com\n  vip_timeout_secs: 30\ndatabase:\n  port: {db_port}\n"
    );
    let node = Node::new(OsId::Debian12, "web-1", "10.0.2.4", &ip.to_string(), &yaml, SECRET);
    let cx = node.cx();
    // hainit's file steps, for real, under the test root.
    let sys = HostSystem::new(Root::new(&r));
    hainit::roles::validate(&cx, &sys).unwrap();
    let pick = |ids: &[&str]| -> Vec<Box<dyn Step>> {
        web::steps(&cx).into_iter().filter(|s| ids.contains(&s.id())).collect()
    };
    let file_steps =
        ["web.wordpress.tree", "web.config.wp-config", "web.php-fpm.pool", "web.nginx.site", "web.permissions.tree"];
    let unpack_started = Instant::now();
    let outcomes = engine::apply(&pick(&file_steps), &cx, &sys).unwrap();
    let unpack_time = unpack_started.elapsed();
    assert!(outcomes.iter().all(|(_, o)| matches!(o, Outcome::Changed { .. })), "{outcomes:?}");
    let recheck_started = Instant::now();
    assert!(engine::plan(&pick(&file_steps), &cx, &sys).unwrap().is_converged(), "a re-run changes nothing");
    let recheck_time = recheck_started.elapsed();

    // Before MariaDB runs, the port answers as an internal LB whose backends are all down (found
    // in the lab: TCP is accepted, then closed): the install is "not ready yet" (exit 3, retried
    // by the boot unit), not a failure that stops the node for good.
    let no_backend = TcpListener::bind((ip, db_port)).unwrap();
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lb = {
        let stopping = stopping.clone();
        std::thread::spawn(move || {
            for conn in no_backend.incoming() {
                drop(conn);
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
            }
        })
    };
    let err = web::install::InstallStep.check(&cx, &sys).expect_err("a check without a database");
    assert_eq!(err.kind, hainit::error::ErrorKind::Timeout, "{err}");
    let err =
        engine::execute(&sys, &web::install::InstallStep::install(&cx)).expect_err("an install without a database");
    assert_eq!(err.kind, hainit::error::ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("database connection"), "{err}");
    stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = TcpStream::connect((ip, db_port)); // wakes the accept loop, which then ends
    lb.join().unwrap();

    // MariaDB, now on the VIP port.
    sh(Command::new("mariadb-install-db")
        .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"])
        .arg(format!("--datadir={}", t.join("db").display())));
    let _db = Daemon::start(
        "mariadbd",
        Command::new("mariadbd")
            .args(["--no-defaults", "--user=root", "--skip-name-resolve"])
            .arg(format!("--datadir={}", t.join("db").display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", t.join("mysqld.pid").display()))
            .arg(format!("--bind-address={ip}"))
            .arg(format!("--port={db_port}")),
        &t.join("logs/mariadb.log"),
    );
    wait_for("MariaDB", t, Duration::from_secs(60), || TcpStream::connect((ip, db_port)).is_ok());

    let db_pw = cx.derive(Purpose::WordpressDb);
    sql(
        &socket,
        &format!(
            "CREATE DATABASE wordpress; CREATE USER 'wordpress'@'%' IDENTIFIED BY '{}'; \
             GRANT ALL ON wordpress.* TO 'wordpress'@'%';",
            db_pw.expose()
        ),
    );

    // php-fpm and nginx on the rendered files (paths and addresses moved into the sandbox).
    let wp = r.join("var/www/wordpress");
    let php_sock = t.join("php.sock");
    let pool = t.join("pool.conf");
    sandboxed(
        &r.join("etc/php/8.2/fpm/pool.d/hainit.conf"),
        &pool,
        &[("/run/php/hainit.sock", php_sock.display().to_string())],
    );
    let fpm_conf = t.join("php-fpm.conf");
    let global = format!(
        "[global]\npid = {0}/php-fpm.pid\nerror_log = {0}/logs/php-fpm.log\ndaemonize = no\ninclude = {1}\n",
        t.display(),
        pool.display()
    );
    std::fs::write(&fpm_conf, global).unwrap();
    let _fpm = Daemon::start(
        "php-fpm",
        Command::new("php-fpm8.2")
            .arg("-F")
            .arg("-y")
            .arg(&fpm_conf)
            .arg("-c")
            .arg(r.join("etc/php/8.2/fpm/conf.d/90-hainit.ini")),
        &t.join("logs/php-fpm.out"),
    );
    let logs = t.join("logs").display().to_string();
    sandboxed(
        &r.join("etc/nginx/conf.d/hainit.conf"),
        &t.join("conf.d/hainit.conf"),
        &[
            ("listen 80 default_server", format!("listen {ip}:{http_port} default_server")),
            ("root /var/www/wordpress", format!("root {}", wp.display())),
            ("unix:/run/php/hainit.sock", format!("unix:{}", php_sock.display())),
            ("/var/log/nginx", logs.clone()),
        ],
    );
    let nginx_conf = t.join("nginx.conf");
    sandboxed(
        &r.join("etc/nginx/nginx.conf"),
        &nginx_conf,
        &[
            ("pid /run/nginx.pid", format!("pid {}/nginx.pid", t.display())),
            ("/var/log/nginx", logs),
            ("/etc/nginx/conf.d", t.join("conf.d").display().to_string()),
        ],
    );
    let _nginx = Daemon::start(
        "nginx",
        Command::new("nginx").arg("-c").arg(&nginx_conf).arg("-p").arg(t).args(["-g", "daemon off;"]),
        &t.join("logs/nginx.out"),
    );
    let mut browser = Browser::new(&site);
    wait_for("nginx", t, Duration::from_secs(30), || TcpStream::connect(SocketAddr::from((ip, http_port))).is_ok());
    wait_for("php-fpm", t, Duration::from_secs(30), || php_sock.exists());
    assert_eq!(browser.get("/healthz"), (200, "ok\n".to_string()), "the LB probe needs neither PHP nor the DB");

    // Two web nodes finish the install at the same moment: both run the install (their checks
    // both saw an empty database), one installs under the lock, the other finds the site.
    let vip_wait = pick(&["web.db.vip"]);
    assert!(engine::plan(&vip_wait, &cx, &sys).unwrap().is_converged(), "the VIP answers");
    let install = web::install::InstallStep.check(&cx, &sys).unwrap();
    assert_eq!(install.len(), 1, "an empty database needs the install: {install:?}");
    let install_started = Instant::now();
    let installers: Vec<_> = ["web-1", "web-2"]
        .into_iter()
        .map(|host| {
            let (action, r) = (install[0].clone(), r.clone());
            std::thread::spawn(move || (host, engine::execute(&HostSystem::new(Root::new(&r)), &action)))
        })
        .collect();
    for handle in installers {
        let (host, result) = handle.join().unwrap();
        result.unwrap_or_else(|e| panic!("{host}: install: {e}\n{}", logs_of(t)));
    }
    let install_time = install_started.elapsed();
    assert_eq!(sql(&socket, "SELECT COUNT(*) FROM wordpress.wp_users"), "1", "one admin: installed once");
    assert_eq!(sql(&socket, "SELECT COUNT(*) FROM wordpress.wp_posts WHERE post_title = 'Hello world!'"), "1");
    assert_eq!(
        sql(&socket, "SELECT option_value FROM wordpress.wp_options WHERE option_name = 'blogname'"),
        "hainit loopback"
    );
    let again = pick(&["web.db.vip", "web.wordpress.install"]);
    assert!(engine::plan(&again, &cx, &sys).unwrap().is_converged(), "a re-run does not install again");
    let web2 = Node::new(OsId::Debian12, "web-2", "10.0.2.5", &ip.to_string(), &yaml, SECRET);
    assert!(engine::plan(&again, &web2.cx(), &sys).unwrap().is_converged(), "nor does a second node");

    // The site, and hainit's rules in front of it.
    let (status, home) = browser.get("/");
    assert_eq!(status, 200, "{:?} {home}\n{}", browser.location, logs_of(t));
    assert!(home.contains("hainit loopback") && home.contains("Hello world!"), "front page:\n{home}");
    assert_eq!(browser.get("/wp-config.php").0, 403);
    assert_eq!(browser.get("/wp-content/plugins/akismet/.htaccess").0, 403, "dotfiles are denied");
    std::fs::create_dir_all(wp.join("wp-content/uploads")).unwrap();
    std::fs::write(wp.join("wp-content/uploads/evil.php"), "<?php echo 'executed';").unwrap();
    let (status, body) = browser.get("/wp-content/uploads/evil.php");
    assert!(status == 403 && !body.contains("executed"), "uploaded PHP ran: {status} {body}");
    std::fs::remove_file(wp.join("wp-content/uploads/evil.php")).unwrap();
    let www = nix::unistd::User::from_name("www-data").unwrap().unwrap();
    std::os::unix::fs::chown(wp.join("wp-content/uploads"), Some(www.uid.as_raw()), Some(www.gid.as_raw())).unwrap();
    assert_eq!(browser.get("/no-such-script.php").0, 404, "only scripts that exist reach PHP");

    // Log in as the admin hainit created, and write a post through the REST API.
    let admin_pw = cx.derive(Purpose::WordpressAdmin);
    let form = format!("log=wpadmin&pwd={}&wp-submit=Log+In&testcookie=1", admin_pw.expose());
    let (status, body) = browser.post("/wp-login.php", "application/x-www-form-urlencoded", &form, &[]);
    assert_eq!(status, 302, "login with the derived admin password failed: {body}");
    let (status, nonce) = browser.get("/wp-admin/admin-ajax.php?action=rest-nonce");
    assert_eq!(status, 200, "{nonce}");
    let title = format!("Written through the REST API {}", std::process::id());
    let post = serde_json::json!({"title": title, "content": "Posted by hainit's loopback test.", "status": "publish"});
    let (status, body) = browser.post(
        "/index.php?rest_route=/wp/v2/posts",
        "application/json",
        &post.to_string(),
        &[("X-WP-Nonce", nonce.trim())],
    );
    assert_eq!(status, 201, "REST API: {body}");
    let mut reader = Browser::new(&site); // a visitor without cookies
    let (status, home) = reader.get("/");
    assert_eq!(status, 200);
    assert!(home.contains(&title), "the new post is not on the front page:\n{home}");
    // Neither the install (run as root) nor the running site left files hainit would now fix.
    let drift = engine::plan(&pick(&file_steps), &cx, &sys).unwrap();
    assert!(drift.is_converged(), "the tree drifted:\n{}", drift.to_text());
    eprintln!(
        "loopback stack: {:.1} s total; unpack + files {:.2} s, re-check {:.2} s, concurrent install {:.2} s",
        started.elapsed().as_secs_f64(),
        unpack_time.as_secs_f64(),
        recheck_time.as_secs_f64(),
        install_time.as_secs_f64()
    );
}

fn logs_of(t: &Path) -> String {
    let mut out = String::new();
    for f in [
        "logs/php-fpm.out",
        "logs/php-fpm.log",
        "logs/nginx.out",
        "logs/error.log",
        "logs/hainit-error.log",
        "logs/mariadb.log",
    ] {
        let p: PathBuf = t.join(f);
        out += &format!("--- {f}\n{}\n", std::fs::read_to_string(&p).unwrap_or_default());
    }
    out
}
