//! The real stack on loopback: MariaDB, php-fpm and nginx from Debian's packages, WordPress from
//! scripts/wordpress-tarball.sh, hainit's steps applied with HostSystem under a test root and the
//! install step run for real (twice at once, as two web nodes would). /healthz answers 503 until
//! the uploads are a mount (a tmpfs stands in for the share), then 200; the site answers, hainit's
//! nginx rules hold (xmlrpc.php closed), PHP cannot write the code, the install check stops on a
//! query error instead of installing again, and the lab's own client (scripts/lab/client.py)
//! writes a post through the REST API and uploads an image as wp-admin does, served back byte for
//! byte. Everything the test starts listens on its own 127.0.0.x address and is stopped by pid;
//! the tmpfs is unmounted when the test ends, also on failure.

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

/// GET `base` + `path` without cookies or redirects: (status, body).
fn get(base: &str, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut r = agent.get(format!("{base}{path}")).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
}

/// scripts/lab/client.py (the lab's and Azure's drill client) against the loopback site: its JSON.
fn client(cx: &hainit::engine::Context, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab/client.py");
    let admin = cx.derive(Purpose::WordpressAdmin);
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .env("HLAB_WP_USER", "wpadmin")
        .env("HLAB_WP_PASSWORD", admin.expose())
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("client.py {args:?}: {e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success() && v["ok"] == true, "client.py {args:?}: {v}");
    v["value"].clone()
}

/// A tmpfs on `path` (the share's stand-in: a mount point over an empty directory), unmounted
/// when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path) -> Tmpfs {
        sh(Command::new("mount").args(["-t", "tmpfs", "-o", "size=16m,mode=0755", "hainit-test-share"]).arg(path));
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
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
    let file_steps = [
        "web.wordpress.tree",
        "web.config.wp-config",
        "web.php-fpm.pool",
        "web.nginx.site",
        "web.permissions.tree",
        "web.healthz",
    ];
    let unpack_started = Instant::now();
    let outcomes = engine::apply(&pick(&file_steps), &cx, &sys).unwrap();
    let unpack_time = unpack_started.elapsed();
    // Root unpacked the tree: it is root's already, the code PHP cannot write.
    let idle: Vec<&str> = outcomes.iter().filter(|(_, o)| *o == Outcome::Converged).map(|(id, _)| *id).collect();
    assert_eq!(idle, ["web.permissions.tree"], "{outcomes:?}");
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
    let healthz = t.join("healthz.php");
    sandboxed(
        &r.join("var/lib/hainit/www/healthz.php"),
        &healthz,
        &[("'/var/www/wordpress", format!("'{}", wp.display()))],
    );
    sandboxed(
        &r.join("etc/nginx/conf.d/hainit.conf"),
        &t.join("conf.d/hainit.conf"),
        &[
            ("listen 80 default_server", format!("listen {ip}:{http_port} default_server")),
            ("root /var/www/wordpress", format!("root {}", wp.display())),
            ("unix:/run/php/hainit.sock", format!("unix:{}", php_sock.display())),
            ("/var/log/nginx", logs.clone()),
            ("SCRIPT_FILENAME /var/lib/hainit/www/healthz.php", format!("SCRIPT_FILENAME {}", healthz.display())),
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
    wait_for("nginx", t, Duration::from_secs(30), || TcpStream::connect(SocketAddr::from((ip, http_port))).is_ok());
    wait_for("php-fpm", t, Duration::from_secs(30), || php_sock.exists());

    // The LB probe runs through php-fpm: 503 while the uploads are the directory underneath (root's,
    // as web.share.uploads leaves it), 200 once a share is mounted there and PHP may write to it.
    let uploads = wp.join("wp-content/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let (status, body) = get(&site, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with(&format!("shared storage: nothing is mounted on {}", uploads.display())), "{body}");
    let _share = Tmpfs::mount(&uploads);
    let (status, body) = get(&site, "/healthz");
    assert!(status == 503 && body.contains("does not take a write"), "a root-owned share: {status} {body}");
    let www = nix::unistd::User::from_name("www-data").unwrap().unwrap();
    std::os::unix::fs::chown(&uploads, Some(www.uid.as_raw()), Some(www.gid.as_raw())).unwrap();
    assert_eq!(get(&site, "/healthz"), (200, "ok\n".to_string()), "the database is not asked\n{}", logs_of(t));

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

    // A query that fails is an error (exit 3, retried), never "not installed": the wordpress user
    // loses SELECT on a live site, and neither the check nor an install touches it.
    sql(&socket, "REVOKE SELECT ON wordpress.* FROM 'wordpress'@'%';");
    let err = web::install::InstallStep.check(&cx, &sys).expect_err("a check whose query fails");
    assert_eq!(err.kind, hainit::error::ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("query failed") && err.message().contains("command denied"), "{err}");
    let err =
        engine::execute(&sys, &web::install::InstallStep::install(&cx)).expect_err("an install on a failing query");
    assert_eq!(err.kind, hainit::error::ErrorKind::Timeout, "{err}");
    sql(&socket, "GRANT SELECT ON wordpress.* TO 'wordpress'@'%';");
    // Users but no siteurl (the options table gone): no state an install leaves; refused, exit 1.
    sql(&socket, "RENAME TABLE wordpress.wp_options TO wordpress.wp_options_away;");
    let err = web::install::InstallStep.check(&cx, &sys).expect_err("a site without options");
    assert_eq!(err.kind, hainit::error::ErrorKind::Step, "{err}");
    assert!(err.message().contains("has 1 users but") && err.message().contains("no siteurl"), "{err}");
    sql(&socket, "RENAME TABLE wordpress.wp_options_away TO wordpress.wp_options;");
    assert_eq!(sql(&socket, "SELECT COUNT(*) FROM wordpress.wp_users"), "1", "nothing was installed again");
    assert_eq!(
        sql(&socket, "SELECT option_value FROM wordpress.wp_options WHERE option_name = 'blogname'"),
        "hainit loopback"
    );
    assert!(engine::plan(&again, &cx, &sys).unwrap().is_converged(), "and the site is found again");

    // The site, and hainit's rules in front of it.
    let (status, home) = get(&site, "/");
    assert_eq!(status, 200, "{home}\n{}", logs_of(t));
    assert!(home.contains("hainit loopback") && home.contains("Hello world!"), "front page:\n{home}");
    assert_eq!(get(&site, "/wp-config.php").0, 403);
    assert_eq!(get(&site, "/wp-content/plugins/akismet/.htaccess").0, 403, "dotfiles are denied");
    let (status, body) = get(&site, "/xmlrpc.php");
    assert!(status == 403 && !body.contains("XML-RPC"), "xmlrpc.php is closed: {status} {body}");
    std::fs::write(uploads.join("evil.php"), "<?php echo 'executed';").unwrap();
    let (status, body) = get(&site, "/wp-content/uploads/evil.php");
    assert!(status == 403 && !body.contains("executed"), "uploaded PHP ran: {status} {body}");
    std::fs::remove_file(uploads.join("evil.php")).unwrap();
    assert_eq!(get(&site, "/no-such-script.php").0, 404, "only scripts that exist reach PHP");
    // PHP (www-data) cannot write the code, only the uploads.
    for path in [wp.join("index.php"), wp.join("wp-includes"), wp.join("wp-content/themes"), uploads.clone()] {
        let writable =
            Command::new("runuser").args(["-u", "www-data", "--", "test", "-w"]).arg(&path).status().unwrap();
        assert_eq!(writable.success(), path == uploads, "{} writable by PHP: {}", path.display(), writable.success());
    }

    // The lab's client, as the drill uses it: log in, a post through the REST API, an image through
    // wp-admin's uploader; the image is on the share and served back with the same bytes.
    let title = format!("Written through the REST API {}", std::process::id());
    let post_id = client(&cx, &["post", "--url", &site, "--title", &title, "--deadline", "30"]);
    assert!(post_id.as_u64().is_some_and(|id| id > 1), "{post_id}");
    let (status, home) = get(&site, "/");
    assert_eq!(status, 200);
    assert!(home.contains(&title), "the new post is not on the front page:\n{home}");
    let image = client(&cx, &["upload", "--url", &site, "--name", "loopback-cat", "--deadline", "30"]);
    let url = image["url"].as_str().unwrap();
    let path = url.strip_prefix(&site).unwrap_or_else(|| panic!("{url} is not below {site}"));
    assert!(path.starts_with("/wp-content/uploads/") && path.ends_with(".png"), "{path}");
    let on_share = std::fs::read(wp.join(path.trim_start_matches('/'))).unwrap();
    assert_eq!(hainit::system::archive::sha256_hex(&on_share), image["sha256"].as_str().unwrap());
    let fetched = client(&cx, &["fetch", "--url", url, "--sha256", image["sha256"].as_str().unwrap()]);
    assert_eq!(fetched["bytes"], image["bytes"]);
    let attachment = sql(&socket, &format!("SELECT post_type FROM wordpress.wp_posts WHERE ID = {}", image["id"]));
    assert_eq!(attachment, "attachment", "in the media library");
    let meta = std::fs::metadata(wp.join(path.trim_start_matches('/'))).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), www.uid.as_raw(), "written by PHP");
    // The client's check can fail: other bytes are refused.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab/client.py");
    let wrong = Command::new("python3").arg(script).args(["fetch", "--url", url, "--sha256", &"0".repeat(64)]).output();
    assert!(!wrong.unwrap().status.success(), "client.py fetch accepted other bytes");
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
