//! Rendered files: golden per platform, judged by the real nginx, php-fpm and php, and the same
//! keys and salts on every node of one cluster.

use std::path::Path;
use std::process::Command;

use hainit::engine;
use hainit::platform::OsId;
use hainit::roles::web::{self, install, wp_config};
use hainit::secrets::Purpose;
use hainit::system::{HostSystem, Root};

use super::{web_yaml, Node};
use crate::common::{assert_golden, SECRET};

const SHA: &str = "8f88b0ca608ec0d530890bdbd3ea9027b3e0e828639579f1cb5425a65ba2f634";
const OSES: [(OsId, &str); 3] = [(OsId::Centos7, "centos7"), (OsId::El9, "el9"), (OsId::Debian12, "debian12")];

fn node(os: OsId) -> Node {
    Node::standard(os, &web_yaml("/usr/share/hainit/wordpress.tar.gz", SHA, "  site_url: http://blog.example.com/\n"))
}

/// Every file of the web role written under a fresh directory.
fn render(node: &Node) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cx = node.cx();
    engine::render(&web::steps(&cx), &cx, &HostSystem::without_chown(Root::new(dir.path()))).unwrap();
    dir
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn renders_match_the_golden_files() {
    for (os, name) in OSES {
        let node = node(os);
        let cx = node.cx();
        let mut listing = String::new();
        for step in web::steps(&cx) {
            for spec in step.files(&cx).unwrap() {
                let secret = if spec.content.is_secret() { " secret" } else { "" };
                listing +=
                    &format!("{} {:04o} {}:{}{secret} ({})\n", spec.path, spec.mode, spec.owner, spec.group, step.id());
                let text = String::from_utf8(spec.content.bytes().to_vec()).unwrap();
                assert_golden(&format!("render-web/{name}{}", spec.path), &text);
            }
        }
        assert_golden(&format!("render-web/{name}/FILES"), &listing);
    }
}

/// Point the absolute paths of the rendered nginx files into `r` and stub what nginx includes.
fn sandbox_nginx(r: &Path) {
    let rs = r.display().to_string();
    for dir in ["etc/nginx/modules-enabled", "usr/share/nginx/modules", "var/log/nginx", "run", "var/www/wordpress"] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::fs::copy("/etc/nginx/mime.types", r.join("etc/nginx/mime.types")).unwrap();
    for f in ["etc/nginx/nginx.conf", "etc/nginx/conf.d/hainit.conf"] {
        let text = std::fs::read_to_string(r.join(f)).unwrap();
        let text = text
            .replace("/etc/nginx", &format!("{rs}/etc/nginx"))
            .replace("/var/log/nginx", &format!("{rs}/var/log/nginx"))
            .replace("/usr/share/nginx", &format!("{rs}/usr/share/nginx"))
            .replace("pid /run", &format!("pid {rs}/run"))
            .replace("root /var/www", &format!("root {rs}/var/www"))
            .replace("user nginx;", "user www-data;"); // EL's user does not exist here
        std::fs::write(r.join(f), text).unwrap();
    }
}

fn nginx_t(r: &Path) -> (bool, String) {
    let conf = r.join("etc/nginx/nginx.conf");
    run(Command::new("nginx").arg("-t").arg("-c").arg(&conf).arg("-p").arg(r))
}

#[test]
fn nginx_accepts_the_rendered_configuration() {
    for (os, name) in OSES {
        let dir = render(&node(os));
        sandbox_nginx(dir.path());
        let (ok, out) = nginx_t(dir.path());
        assert!(ok, "{name}: nginx -t failed:\n{out}");
        // The check can fail: a broken site is refused.
        let site = dir.path().join("etc/nginx/conf.d/hainit.conf");
        let text = std::fs::read_to_string(&site).unwrap();
        std::fs::write(&site, text.replace("try_files $uri =404;", "try_files $uri =404")).unwrap();
        assert!(!nginx_t(dir.path()).0, "{name}: nginx -t accepted a broken site");
    }
}

#[test]
fn php_fpm_accepts_the_rendered_pool_and_ini() {
    for (os, name) in OSES {
        let dir = render(&node(os));
        let r = dir.path();
        let web = &os.platform().web;
        let pool_dir = r.join(web.php_fpm_pool_dir.trim_start_matches('/'));
        let pool = pool_dir.join("hainit.conf");
        let text = std::fs::read_to_string(&pool).unwrap();
        let sock = r.join("hainit.sock");
        let text = text
            .replace(web.php_fpm_listen, &sock.display().to_string())
            .replace("= apache", "= www-data")
            .replace("= nginx", "= www-data");
        std::fs::write(&pool, text).unwrap();
        let fpm_conf = r.join("php-fpm.conf");
        std::fs::write(
            &fpm_conf,
            format!(
                "[global]\npid = {0}/fpm.pid\nerror_log = {0}/fpm.log\ninclude = {1}/*.conf\n",
                r.display(),
                pool_dir.display()
            ),
        )
        .unwrap();
        let ini = r.join(web.php_ini_dir.trim_start_matches('/')).join("90-hainit.ini");
        let (ok, out) = run(Command::new("php-fpm8.2").arg("-t").arg("-y").arg(&fpm_conf).arg("-c").arg(&ini));
        assert!(ok, "{name}: php-fpm -t failed:\n{out}");
        // Without hainit's pool only the stub of the stock pool is left: no pool at all.
        std::fs::remove_file(&pool).unwrap();
        let (ok, out) = run(Command::new("php-fpm8.2").arg("-t").arg("-y").arg(&fpm_conf));
        assert!(!ok && out.contains("No pool defined"), "{name}: {out}");
    }
}

#[test]
fn php_accepts_the_rendered_wp_config_and_reads_what_was_meant() {
    for (os, name) in OSES {
        let node = node(os);
        let dir = render(&node);
        let wp = dir.path().join("var/www/wordpress");
        let config = wp.join("wp-config.php");
        let (ok, out) = run(Command::new("php").arg("-l").arg(&config));
        assert!(ok, "{name}: php -l: {out}");
        std::fs::write(wp.join("wp-settings.php"), "<?php\n").unwrap();
        let probe = "require 'wp-config.php'; echo DB_NAME, '|', DB_USER, '|', DB_HOST, '|', $table_prefix, '|', \
                     WP_HOME, '|', strlen(DB_PASSWORD), '|', AUTH_KEY === NONCE_SALT ? 'same' : 'distinct';";
        let (ok, out) = run(Command::new("php").arg("-r").arg(probe).current_dir(&wp));
        assert!(ok, "{name}: {out}");
        assert_eq!(out, "wordpress|wordpress|10.0.1.10:3306|wp_|http://blog.example.com|64|distinct", "{name}");
    }
}

#[test]
fn same_secret_same_keys_other_secret_other_keys() {
    let yaml = web_yaml("/usr/share/hainit/wordpress.tar.gz", SHA, "");
    let a = Node::new(OsId::Debian12, "web-1", "10.0.2.4", "10.0.1.10", &yaml, SECRET);
    let b = Node::new(OsId::Debian12, "web-2", "10.0.2.5", "10.0.1.10", &yaml, SECRET);
    let other_secret = format!("{SECRET}-other-cluster");
    let c = Node::new(OsId::Debian12, "web-1", "10.0.2.4", "10.0.1.10", &yaml, &other_secret);
    let (ra, rb, rc) =
        (wp_config::render(&a.cx()).unwrap(), wp_config::render(&b.cx()).unwrap(), wp_config::render(&c.cx()).unwrap());
    assert_eq!(ra, rb, "two web nodes of one cluster render the same wp-config.php");
    let keys = |n: &Node| -> Vec<String> {
        wp_config::SALT_NAMES.iter().map(|k| n.cx().derive(Purpose::WordpressSalt(k)).expose().to_string()).collect()
    };
    let (ka, kc) = (keys(&a), keys(&c));
    for (i, name) in wp_config::SALT_NAMES.iter().enumerate() {
        assert!(ra.contains(&format!("define( '{name}', '{}' );", ka[i])), "{name} missing from wp-config.php");
        assert!(!rc.contains(&ka[i]), "{name} of one secret appears with another secret");
        assert_ne!(ka[i], kc[i]);
        assert_eq!(ka[i].len(), 64);
    }
    let distinct: std::collections::BTreeSet<&String> = ka.iter().collect();
    assert_eq!(distinct.len(), 8, "the eight keys and salts differ from each other");
    assert_eq!(wp_config::render(&a.cx()).unwrap(), ra, "stable across runs");
}

#[test]
fn the_install_program_is_valid_php() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.php");
    std::fs::write(&file, format!("<?php\n{}", install::script_code())).unwrap();
    let (ok, out) = run(Command::new("php").arg("-l").arg(&file));
    assert!(ok, "{out}");
}

#[test]
fn systemd_accepts_the_mount_unit_under_the_name_it_escapes_to() {
    for (os, name) in OSES {
        let dir = render(&node(os));
        let units = dir.path().join("etc/systemd/system");
        let files: Vec<_> = std::fs::read_dir(&units).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{name}: {files:?}");
        let unit = &files[0];
        let (ok, escaped) = run(Command::new("systemd-escape").args([
            "--path",
            "--suffix=mount",
            "/var/www/wordpress/wp-content/uploads",
        ]));
        assert!(ok, "{escaped}");
        assert_eq!(unit.file_name().unwrap().to_str().unwrap(), escaped.trim(), "{name}");
        let (ok, out) = run(Command::new("systemd-analyze").arg("verify").arg(unit));
        assert!(ok && out.trim().is_empty(), "{name}: systemd-analyze verify:\n{out}");
        let text = std::fs::read_to_string(unit).unwrap();
        assert!(text.contains(&format!("What={}\n", super::SHARE)) && text.contains("Type=nfs4\n"), "{text}");
        let options = text.lines().find_map(|l| l.strip_prefix("Options=")).unwrap();
        let options: Vec<&str> = options.split(',').collect();
        for want in ["vers=4.1", "sec=sys", "hard", "_netdev", "nofail"] {
            assert!(options.contains(&want), "{name}: {options:?} lacks {want}");
        }
        let selinux = options.iter().any(|o| o.starts_with("context=") && o.contains(":httpd_sys_rw_content_t:"));
        assert_eq!(selinux, os.platform().selinux, "{name}: {options:?}");
        // The check can fail: a unit whose name does not match its mount point is refused.
        let wrong = units.join("wrong.mount");
        std::fs::copy(unit, &wrong).unwrap();
        assert!(!run(Command::new("systemd-analyze").arg("verify").arg(&wrong)).0, "{name}");
    }
}

/// healthz.php, run by the real php: 503 with its reasons where nothing is mounted, 200 on a
/// mount that takes a write (/dev/shm, a tmpfs below devtmpfs /dev, stands in for the share).
#[test]
fn the_health_check_is_valid_php_and_tells_a_mount_from_the_directory_under_it() {
    let dir = render(&node(OsId::Debian12));
    let healthz = dir.path().join("var/lib/hainit/www/healthz.php");
    let (ok, out) = run(Command::new("php").arg("-l").arg(&healthz));
    assert!(ok, "php -l: {out}");
    let text = std::fs::read_to_string(&healthz).unwrap();
    let config = dir.path().join("var/www/wordpress/wp-config.php");
    let plain = tempfile::tempdir().unwrap();
    let probe = |uploads: &Path| {
        let script = plain.path().join("healthz-test.php");
        let t = text
            .replace("'/var/www/wordpress/wp-config.php'", &format!("'{}'", config.display()))
            .replace("'/var/www/wordpress/wp-content/uploads'", &format!("'{}'", uploads.display()))
            .replace("http_response_code(503);", "echo \"503\\n\";");
        std::fs::write(&script, t).unwrap();
        run(Command::new("php").arg(&script)).1
    };
    // A directory of the same filesystem as its parent: not mounted.
    let out = probe(plain.path());
    assert!(out.starts_with("503\nshared storage: nothing is mounted on "), "{out}");
    assert!(out.contains(super::SHARE), "the reason names the share: {out}");
    // A mount point (/dev/shm is one) that takes a write: healthy (the write is a dotfile, which
    // nginx never serves; another run of this test may be writing the same one).
    let shm = Path::new("/dev/shm");
    assert_eq!(probe(shm), "ok\n");
    // wp-config.php unreadable: named.
    std::fs::remove_file(&config).unwrap();
    assert!(probe(shm).contains(&format!("wordpress: {} is not readable", config.display())));
    let host = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    let _ = std::fs::remove_file(shm.join(format!(".hainit-healthz-{host}")));
}

#[test]
fn xmlrpc_is_closed_unless_the_config_opens_it() {
    let yaml = |extra: &str| web_yaml("/usr/share/hainit/wordpress.tar.gz", SHA, extra);
    for (extra, closed) in [("", true), ("  xmlrpc: true\n", false)] {
        let dir = render(&Node::standard(OsId::Debian12, &yaml(extra)));
        sandbox_nginx(dir.path());
        let (ok, out) = nginx_t(dir.path());
        assert!(ok, "{extra}: nginx -t:\n{out}");
        let site = std::fs::read_to_string(dir.path().join("etc/nginx/conf.d/hainit.conf")).unwrap();
        assert_eq!(site.contains("location = /xmlrpc.php {\n        deny all;\n    }"), closed, "{extra}:\n{site}");
    }
}
