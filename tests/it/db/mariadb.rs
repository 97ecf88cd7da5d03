//! MariaDB judges `db.mariadb.secure`: a real mariadbd on a fresh datadir (initialised with the
//! platform's mariadb-install-db arguments, own socket, a 127.0.3.x address) is made dirty the
//! way old installs are, `SecureStep::script` runs through the mysql client as the step's
//! fresh-root path does, and the step's own facts query then reports the wanted row. The
//! WordPress user logs in over TCP from an allowed address only; root never over TCP.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hainit::engine::{Context, Options};
use hainit::platform::OsId;
use hainit::roles::db::facts::MYSQL_ROOT_CNF;
use hainit::roles::db::mariadb::{ConfigStep, SecureStep};
use hainit::secrets::Purpose;

use super::{assert_root, run, Node};
use crate::common::daemon::Daemon;
use crate::common::output_with_stdin;

/// Addresses of this test run: the server, an allowed client and a refused one.
fn addresses() -> (Ipv4Addr, Ipv4Addr, Ipv4Addr) {
    let x = 2 + (std::process::id() % 250) as u8;
    (Ipv4Addr::new(127, 0, 3, x), Ipv4Addr::new(127, 0, 3, x + 1), Ipv4Addr::new(127, 0, 4, x))
}

struct Server {
    dir: PathBuf,
    ip: Ipv4Addr,
    port: u16,
    /// Relays that reach the server from a chosen source address (the client cannot bind one).
    relays: Vec<(Ipv4Addr, u16, Daemon)>,
    _daemon: Daemon,
}

impl Server {
    fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// The mysql client with `args`, `sql` on stdin.
    fn mysql(&self, args: &[&str], sql: &str) -> Output {
        output_with_stdin(Command::new("mysql").args(args).env("HOME", &self.dir), sql.as_bytes())
    }

    /// As the step's fresh-root path: root over the socket, no password (unix_socket auth).
    fn fresh_root(&self, sql: &str) -> Output {
        let socket = self.socket();
        self.mysql(&["--no-defaults", "-u", "root", "-N", "-B", "-S", socket.to_str().unwrap()], sql)
    }

    /// As the step's root path: the root client file hainit writes, with this server's socket.
    fn root_cnf(&self, cnf: &Path, sql: &str) -> Output {
        let socket = self.socket();
        let extra = format!("--defaults-extra-file={}", cnf.display());
        self.mysql(&[&extra, "-N", "-B", "-S", socket.to_str().unwrap()], sql)
    }

    /// A socat relay on this server's address whose connections to the server come from `from`.
    fn relay(&mut self, from: Ipv4Addr) {
        let port = free_port(self.ip);
        let daemon = Daemon::start(
            "socat",
            Command::new("socat")
                .arg(format!("TCP-LISTEN:{port},bind={},reuseaddr,fork", self.ip))
                .arg(format!("TCP:{}:{},bind={from}", self.ip, self.port)),
            &self.dir.join(format!("socat-{from}.log")),
        );
        wait_listening(self.ip, port, &self.dir.join(format!("socat-{from}.log")));
        self.relays.push((from, port, daemon));
    }

    /// `user` with `password` over TCP, arriving from the address `from`.
    fn tcp(&self, user: &str, password: &str, from: Ipv4Addr, sql: &str) -> Output {
        let port = self.relays.iter().find(|(f, _, _)| *f == from).map(|(_, p, _)| *p).unwrap();
        let cnf = self.dir.join(format!("client-{from}.cnf"));
        std::fs::write(&cnf, format!("[client]\nuser = {user}\npassword = {password}\n")).unwrap();
        let (defaults, host, port) =
            (format!("--defaults-file={}", cnf.display()), format!("--host={}", self.ip), format!("--port={port}"));
        self.mysql(&[&defaults, &host, &port, "--protocol=TCP", "-N", "-B"], sql)
    }
}

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

fn wait_listening(ip: Ipv4Addr, port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect((ip, port)).is_err() {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        assert!(Instant::now() < deadline, "nothing listens on {ip}:{port}\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start(dir: &Path, ip: Ipv4Addr, install_args: &[&str]) -> Server {
    let port = free_port(ip);
    let datadir = dir.join("db");
    // The platform's arguments, but as root: the test's temp dir is not the mysql user's.
    let args: Vec<&str> =
        install_args.iter().map(|a| if a.starts_with("--user=") { "--user=root" } else { a }).collect();
    run(Command::new("mariadb-install-db")
        .arg("--no-defaults")
        .args(args)
        .arg(format!("--datadir={}", datadir.display())));
    let daemon = Daemon::start(
        "mariadbd",
        Command::new("mariadbd")
            .args(["--no-defaults", "--user=root", "--skip-name-resolve"])
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--bind-address={ip}"))
            .arg(format!("--port={port}")),
        &dir.join("mariadb.log"),
    );
    wait_listening(ip, port, &dir.join("mariadb.log"));
    Server { dir: dir.to_path_buf(), ip, port, relays: Vec::new(), _daemon: daemon }
}

fn ok(out: Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what}: {}\n{text}{}", out.status, String::from_utf8_lossy(&out.stderr));
    text
}

fn denied(out: Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what} must be refused, got {}", String::from_utf8_lossy(&out.stdout));
    err
}

/// The root client file `db.mariadb.config` renders, written for the test.
/// mariadbd's own reading of hainit's server settings: `--help --verbose` with the rendered file
/// as its only option file prints every variable as it would run with it.
fn effective_settings(cnf: &[u8], dir: &Path) -> std::collections::BTreeMap<String, String> {
    let path = dir.join("90-hainit.cnf");
    std::fs::write(&path, cnf).unwrap();
    let out = run(Command::new("mariadbd").arg(format!("--defaults-file={}", path.display())).args([
        "--user=root",
        "--help",
        "--verbose",
    ]));
    let table = out.split_once("\n-------").map(|(_, t)| t).expect("mariadbd printed its variables");
    table
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// A failover never loses an acknowledged commit: whatever hainit adds to shorten crash
/// recovery, MariaDB reads its server settings with every commit flushed and synced.
#[test]
fn the_rendered_server_settings_keep_every_commit_durable() {
    let tmp = tempfile::tempdir().unwrap();
    for profile in ["azure", "fast"] {
        let node = Node::new(OsId::Debian12, true, &format!("db:\n  timing_profile: {profile}\n"));
        let cx = node.cx(Options::default());
        let server = ConfigStep::specs(&cx).into_iter().find(|f| f.path.ends_with("/90-hainit.cnf")).unwrap();
        let vars = effective_settings(server.content.bytes(), tmp.path());
        let durable = [
            ("innodb-flush-log-at-trx-commit", "1"),
            ("sync-binlog", "1"),
            ("innodb-doublewrite", "TRUE"),
            ("innodb-max-dirty-pages-pct-lwm", "10"),
        ];
        for (name, value) in durable {
            assert_eq!(vars.get(name).map(String::as_str), Some(value), "{profile}: {name}");
        }
        let method = &vars["innodb-flush-method"];
        assert!(!method.contains("NOSYNC") && !method.contains("NO_FSYNC"), "{profile}: flush method {method}");
    }
    // The judge can fail: the same file with commits flushed once a second.
    let weakened = "[mysqld]\ninnodb_flush_log_at_trx_commit = 2\nsync_binlog = 0\n";
    let vars = effective_settings(weakened.as_bytes(), tmp.path());
    assert_eq!(vars["innodb-flush-log-at-trx-commit"], "2");
    assert_eq!(vars["sync-binlog"], "0");
}

fn root_cnf(cx: &Context, dir: &Path) -> PathBuf {
    let spec = ConfigStep::specs(cx).into_iter().find(|f| f.path == MYSQL_ROOT_CNF).unwrap();
    let path = dir.join("mysql-root.cnf");
    std::fs::write(&path, spec.content.bytes()).unwrap();
    path
}

#[test]
fn the_secure_script_leaves_mariadb_as_the_step_wants_it() {
    assert_root("mariadbd with --user=root and unix_socket login as root");
    let tmp = tempfile::tempdir().unwrap();
    let (ip, allowed, refused) = addresses();
    let yaml = "db:\n  allowed_hosts: [\"127.0.3.0/255.255.255.0\", \"10.0.2.0/255.255.255.0\"]\n";
    let node = Node::new(OsId::Debian12, true, yaml);
    let cx = node.cx(Options::default());
    let mut server = start(tmp.path(), ip, cx.platform.db.mysql_install_args);
    server.relay(allowed);
    server.relay(refused);
    let (name, user) = (&cx.config.database.name, &cx.config.database.user);
    let root_pw = cx.derive(Purpose::MariadbRoot);
    let wp_pw = cx.derive(Purpose::WordpressDb);

    // What older installs and hand-made servers leave behind.
    ok(
        server.fresh_root(
            "CREATE USER ''@'localhost'; CREATE USER ''@'%'; CREATE DATABASE test; \
             CREATE USER 'root'@'%' IDENTIFIED BY 'guessable'; GRANT ALL ON *.* TO 'root'@'%';",
        ),
        "dirty the server",
    );
    let (facts, wanted) = SecureStep::facts_query(&cx).unwrap();
    assert_eq!(wanted, "0\t0\t0\t1\t2\t2");
    let before = ok(server.fresh_root(facts.expose()), "facts before");
    assert_eq!(before.trim(), "2\t1\t1\t0\t0\t0", "the facts query sees the dirt");
    ok(server.tcp("root", "guessable", allowed, "SELECT 1;"), "remote root before the script");
    ok(server.tcp("anyone", "", allowed, "SELECT 1;"), "anonymous before the script");

    // The step's fresh-root path, then its facts query through the root client file.
    let script = SecureStep::script(&cx).unwrap();
    ok(server.fresh_root(script.expose()), "secure script (fresh root)");
    let cnf = root_cnf(&cx, tmp.path());
    assert_eq!(ok(server.root_cnf(&cnf, facts.expose()), "facts").trim(), wanted);

    // WordPress's user: over TCP from an allowed address, with all rights on its database only.
    let who = ok(
        server.tcp(
            user,
            wp_pw.expose(),
            allowed,
            &format!("SELECT CURRENT_USER(); CREATE TABLE `{name}`.t (i INT); DROP TABLE `{name}`.t;"),
        ),
        "WordPress user over TCP",
    );
    assert_eq!(who.trim(), format!("{user}@127.0.3.0/255.255.255.0"));
    denied(server.tcp(user, wp_pw.expose(), allowed, "CREATE DATABASE other;"), "a database of its own");
    denied(server.tcp(user, "wrong", allowed, "SELECT 1;"), "a wrong password");
    let err = denied(server.tcp(user, wp_pw.expose(), refused, "SELECT 1;"), "WordPress user from 127.0.4.x");
    assert!(err.contains("1130") || err.contains("1045"), "{err}");
    // Root: never over TCP, with the derived password or the old one; no anonymous login.
    denied(server.tcp("root", root_pw.expose(), allowed, "SELECT 1;"), "root over TCP");
    denied(server.tcp("root", "guessable", allowed, "SELECT 1;"), "the old remote root");
    denied(server.tcp("anyone", "", allowed, "SELECT 1;"), "anonymous over TCP");
    let dbs = ok(server.root_cnf(&cnf, "SHOW DATABASES;"), "databases");
    assert!(!dbs.lines().any(|l| l == "test") && dbs.lines().any(|l| l == name.as_str()), "{dbs}");

    // The step's root path runs the script again: harmless, same facts, same logins.
    ok(server.root_cnf(&cnf, script.expose()), "secure script again (root client file)");
    assert_eq!(ok(server.root_cnf(&cnf, facts.expose()), "facts after a re-run").trim(), wanted);
    ok(server.tcp(user, wp_pw.expose(), allowed, "SELECT 1;"), "WordPress user after a re-run");
}
