//! The web role's steps on the fake system: golden plans of a brand-new VM per platform,
//! convergence (also after a run killed at any action), restarts only on change, the VIP wait,
//! one install per database, and input errors.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hainit::engine::{self, Outcome};
use hainit::error::ErrorKind;
use hainit::platform::OsId;
use hainit::roles::web::{self, services};
use hainit::system::{Cmd, Executor, FakeSystem, Output, Probe};

use super::{mini_wordpress, sha256, web_yaml, Node, SHARE};
use crate::common::assert_golden;

const TARBALL: &str = "/usr/share/hainit/wordpress.tar.gz";
const UPLOADS: &str = "/var/www/wordpress/wp-content/uploads";
const MOUNT_UNIT: &str = "var-www-wordpress-wp\\x2dcontent-uploads.mount";
const OSES: [(OsId, &str); 3] = [(OsId::Centos7, "centos7"), (OsId::El9, "el9"), (OsId::Debian12, "debian12")];

fn node(os: OsId) -> Node {
    Node::standard(os, &web_yaml(TARBALL, &sha256(&mini_wordpress("6.1.9")), ""))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A VM just booted from the image: the tarball baked in, no packages, services not set up, the
/// DB VIP answering. Command handlers model what the real tools change.
fn brand_new_vm(os: OsId) -> FakeSystem {
    let f = FakeSystem::new("web-1");
    f.add_file(
        "/etc/passwd",
        "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\napache:x:48:48::/:/bin/false\n",
        0o644,
    );
    f.add_file("/etc/group", "root:x:0:\nwww-data:x:33:\napache:x:48:\nnginx:x:990:\n", 0o644);
    f.add_file(TARBALL, mini_wordpress("6.1.9"), 0o644);
    f.open_port(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10)), 3306);
    // One query for every package asked (argv after `rpm -q --qf FMT` / `dpkg-query -W -f=FMT`).
    let pm_query = |f: &FakeSystem, c: &Cmd| {
        let asked: Vec<String> = c.argv_redacted().into_iter().skip(if c.program == "rpm" { 4 } else { 3 }).collect();
        let mut out = Output::ok("");
        let mut not_installed = 0;
        for pkg in &asked {
            let line = match f.fact(&format!("pkg.{pkg}")) {
                Some(_) if c.program == "rpm" => format!("{pkg}\n"),
                Some(_) => format!("{pkg} ii \n"),
                None if c.program == "rpm" => format!("package {pkg} is not installed\n"),
                None => format!("{pkg} un \n"), // dpkg-query knows of it, not installed
            };
            not_installed += usize::from(f.fact(&format!("pkg.{pkg}")).is_none());
            out.stdout.push_str(&line);
        }
        if c.program == "rpm" {
            out.code = Some(not_installed as i32);
        }
        out
    };
    f.on(&["rpm"], pm_query);
    f.on(&["dpkg-query"], pm_query);
    let install = |f: &FakeSystem, c: &Cmd| {
        for p in c.argv_redacted().iter().skip(1).filter(|a| !a.starts_with('-') && a.as_str() != "install") {
            f.set_fact(&format!("pkg.{p}"), "1");
        }
        Output::ok("")
    };
    for pm in ["yum", "dnf", "apt-get"] {
        f.on(&[pm], install);
    }
    f.on(&["systemctl", "show"], |f, c| {
        let unit = c.argv_redacted().last().cloned().unwrap_or_default();
        let started = f.fact(&format!("{unit}.started")).map(|s| hainit::status::rfc3339(s.parse().unwrap()));
        let started = started.map(|s| format!("Mon {} {} UTC", &s[..10], &s[11..19])).unwrap_or_default();
        let active = if started.is_empty() { "inactive" } else { "active" };
        let enabled = f.fact(&format!("{unit}.enabled")).unwrap_or("disabled".into());
        Output::ok(format!("UnitFileState={enabled}\nActiveState={active}\nActiveEnterTimestamp={started}\n"))
    });
    f.on(&["systemctl", "enable"], |f, c| {
        f.set_fact(&format!("{}.enabled", c.argv_redacted()[2]), "enabled");
        Output::ok("")
    });
    f.reply(&["systemctl", "reset-failed"], Output::ok(""));
    for verb in ["start", "restart"] {
        f.on(&["systemctl", verb], |f, c| {
            let unit = &c.argv_redacted()[2];
            f.set_fact(&format!("{unit}.started"), &secs(f.now()).to_string());
            f.set_fact(
                &format!("{unit}.starts"),
                &(f.fact(&format!("{unit}.starts")).map_or(0, |n| n.parse().unwrap()) + 1).to_string(),
            );
            Output::ok("")
        });
    }
    // EL: SELinux enforcing with the stock policy, firewalld running with HTTP closed.
    f.reply(&["getenforce"], Output::ok("Enforcing\n"));
    f.on(&["getsebool"], |f, _| {
        Output::ok(format!("httpd_can_network_connect_db --> {}\n", f.fact("sebool").unwrap_or("off".into())))
    });
    f.on(&["setsebool"], |f, _| {
        f.set_fact("sebool", "on");
        Output::ok("")
    });
    // semanage remembers each rule's type; matchpathcon answers it (else the policy's default);
    // restorecon -n lists a path until restorecon labelled it after its rule was added.
    f.on(&["matchpathcon"], |f, c| {
        let path = c.argv_redacted()[1].clone();
        let t = f.fact(&format!("fcontext:{path}")).unwrap_or("httpd_sys_content_t".into());
        Output::ok(format!("{path}\tsystem_u:object_r:{t}:s0\n"))
    });
    f.on(&["semanage", "fcontext"], |f, c| {
        let argv = c.argv_redacted();
        let path = argv.last().unwrap().trim_end_matches("(/.*)?").to_string();
        f.set_fact(&format!("fcontext:{path}"), &argv[4]);
        Output::ok("")
    });
    f.on(&["restorecon"], |f, c| {
        let argv = c.argv_redacted();
        let path = argv.last().unwrap().clone();
        if argv.contains(&"-n".to_string()) {
            return match (f.fact(&format!("fcontext:{path}")), f.fact(&format!("relabeled:{path}"))) {
                (Some(_), None) => Output::ok(format!("Would relabel {path}\n")),
                _ => Output::ok(""),
            };
        }
        f.set_fact(&format!("relabeled:{path}"), "1");
        Output::ok("")
    });
    // Nothing mounted but the root; `systemctl start` of the uploads' mount unit mounts the share.
    f.add_file("/proc/self/mountinfo", "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n", 0o444);
    f.reply(&["systemctl", "daemon-reload"], Output::ok(""));
    f.on(&["systemctl", "start", MOUNT_UNIT], |f, _| {
        let mut text = f.read_string("/proc/self/mountinfo").unwrap().unwrap();
        text += &format!("51 22 0:48 / {UPLOADS} rw,relatime shared:30 - nfs4 {SHARE} rw,vers=4.1\n");
        f.add_file("/proc/self/mountinfo", text, 0o444);
        f.set_fact("mounts", &(f.fact("mounts").map_or(0, |n| n.parse().unwrap()) + 1).to_string());
        Output::ok("")
    });
    f.reply(&["firewall-cmd", "--state"], Output::ok("running\n"));
    for scope in [&["firewall-cmd", "--permanent"][..], &["firewall-cmd"][..]] {
        let key = scope.len().to_string();
        let k = key.clone();
        f.on(&[scope, &["--query-service=http"]].concat(), move |f, _| {
            Output::ok(if f.fact(&format!("fw{k}")).is_some() { "yes\n" } else { "no\n" })
        });
        f.on(&[scope, &["--add-service=http"]].concat(), move |f, _| {
            f.set_fact(&format!("fw{key}"), "1");
            Output::ok("success\n")
        });
    }
    let web = &os.platform().web;
    f.reply(&[web.nginx_binary, "-t"], Output::ok(""));
    f.reply(&[web.php_fpm_binary, "-t"], Output::ok(""));
    f.on(&[web.php_binary], |f, c| {
        let mode = c.env.iter().find(|(k, _)| k == "HAINIT_MODE").map(|(_, v)| v.clone()).unwrap_or_default();
        if mode == "install" {
            assert!(c.stdin_bytes().is_some_and(|pw| pw.len() == 64), "the admin password comes on stdin");
            f.set_fact(
                "wp.installs",
                &(f.fact("wp.installs").map_or(0, |n| n.parse::<u32>().unwrap()) + 1).to_string(),
            );
            f.set_fact("wp.installed", "1");
        }
        let state = if f.fact("wp.installed").is_some() { "installed" } else { "not-installed" };
        Output::ok(format!("HAINIT:{state}\n"))
    });
    f
}

#[test]
fn plans_of_a_brand_new_vm_match_the_golden_files() {
    for (os, name) in OSES {
        let node = node(os);
        let cx = node.cx();
        let plan = engine::plan(&web::steps(&cx), &cx, &brand_new_vm(os)).unwrap();
        assert_golden(&format!("plan-web/{name}.txt"), &plan.to_text());
        assert_golden(&format!("plan-web/{name}.json"), &format!("{:#}\n", plan.to_json()));
    }
}

#[test]
fn apply_converges_and_a_second_run_changes_nothing() {
    for (os, name) in OSES {
        let node = node(os);
        let cx = node.cx();
        let sys = brand_new_vm(os);
        let steps = web::steps(&cx);
        let first = engine::apply(&steps, &cx, &sys).unwrap();
        let idle: Vec<&str> = first.iter().filter(|(_, o)| *o == Outcome::Converged).map(|(id, _)| *id).collect();
        // Root unpacked the tree, so it is root's already; the VIP is open.
        assert_eq!(idle, ["web.permissions.tree", "web.db.vip"], "{name}: the other steps had work: {first:?}");
        assert!(engine::plan(&steps, &cx, &sys).unwrap().is_converged(), "{name}");
        let second = engine::apply(&steps, &cx, &sys).unwrap();
        assert!(second.iter().all(|(_, o)| *o == Outcome::Converged), "{name}: {second:?}");
        let web = &os.platform().web;
        assert_eq!(sys.fact(&format!("{}.starts", web.nginx_service)).as_deref(), Some("1"), "{name}");
        assert_eq!(sys.fact("wp.installs").as_deref(), Some("1"), "{name}");
        let cfg = sys.meta("/var/www/wordpress/wp-config.php").unwrap().unwrap();
        assert_eq!((cfg.mode, cfg.uid, cfg.gid), (0o640, 0, if web.web_group == "www-data" { 33 } else { 48 }));
        let web_uid = if web.web_user == "www-data" { 33 } else { 48 };
        let index = sys.meta("/var/www/wordpress/index.php").unwrap().unwrap();
        assert_eq!((index.mode, index.uid, index.gid), (0o644, 0, 0), "{name}: the code is root's");
        let uploads = sys.meta(UPLOADS).unwrap().unwrap();
        assert_eq!((uploads.mode, uploads.uid), (0o755, web_uid), "{name}: the mounted uploads are PHP's");
        let unit = format!("/etc/systemd/system/{MOUNT_UNIT}");
        assert_eq!(sys.fact(&format!("{MOUNT_UNIT}.enabled")).as_deref(), Some("enabled"), "{name}");
        assert!(sys.read_string(&unit).unwrap().unwrap().contains(&format!("What={SHARE}\n")), "{name}");
        assert_eq!(sys.fact("mounts").as_deref(), Some("1"), "{name}: mounted once");
    }
}

#[test]
fn a_run_killed_after_any_action_is_converged_by_the_next_run() {
    for os in [OsId::Debian12, OsId::El9] {
        killed_anywhere(os);
    }
}

fn killed_anywhere(os: OsId) {
    let node = node(os);
    let cx = node.cx();
    let steps = web::steps(&cx);
    // The actions a whole first run executes (fewer than its plan: a plan before the unpack cannot
    // see that root already owns the tree).
    let whole = brand_new_vm(os);
    let counting = crate::common::dies_after::DiesAfter::new(&whole, usize::MAX);
    engine::apply(&steps, &cx, &counting).unwrap();
    let total = usize::MAX - counting.left.get();
    for n in 0..total {
        let sys = brand_new_vm(os);
        let dying = crate::common::dies_after::DiesAfter::new(&sys, n);
        assert!(engine::apply(&steps, &cx, &dying).is_err(), "{os}: killed after {n} of {total}");
        engine::apply(&steps, &cx, &sys).unwrap_or_else(|e| panic!("re-run after {n}: {e}"));
        assert!(engine::plan(&steps, &cx, &sys).unwrap().is_converged(), "killed after {n}");
        // However it was interrupted, the daemons run the final configuration.
        for svc in services::services(&cx) {
            let started: u64 = sys.fact(&format!("{}.started", svc.unit)).unwrap().parse().unwrap();
            for path in &svc.config {
                assert!(
                    secs(sys.modified(path).unwrap().unwrap()) <= started,
                    "{path} newer than {} (after {n})",
                    svc.unit
                );
            }
        }
    }
}

#[test]
fn a_service_is_restarted_only_when_its_configuration_changed() {
    let node = node(OsId::El9);
    let cx = node.cx();
    let sys = brand_new_vm(OsId::El9);
    let steps = web::steps(&cx);
    engine::apply(&steps, &cx, &sys).unwrap();
    let web = &OsId::El9.platform().web;
    // Someone edits the site: nginx (only) is rewritten and restarted after its config test.
    sys.add_file("/etc/nginx/conf.d/hainit.conf", "server { listen 8080; }\n", 0o644);
    let plan = engine::plan(&steps, &cx, &sys).unwrap();
    let changed: Vec<&str> = plan.steps.iter().filter(|s| !s.actions.is_empty()).map(|s| s.name).collect();
    assert_eq!(changed, ["web.nginx.site", "web.services"]);
    let svc = plan.steps.iter().find(|s| s.name == "web.services").unwrap();
    let lines: Vec<String> = svc.actions.iter().map(|a| a.describe()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("nginx -t") && lines[1].contains("systemctl restart nginx"), "{lines:?}");
    engine::apply(&steps, &cx, &sys).unwrap();
    assert_eq!(sys.fact("nginx.starts").as_deref(), Some("2"));
    assert_eq!(sys.fact(&format!("{}.starts", web.php_fpm_service)).as_deref(), Some("1"));
}

#[test]
fn the_vip_wait_times_out_with_exit_3_naming_vip_and_port() {
    let node = Node::standard(
        OsId::Debian12,
        &web_yaml(TARBALL, &sha256(&mini_wordpress("6.1.9")), "  vip_timeout_secs: 1\ndatabase:\n  port: 3307\n"),
    );
    let cx = node.cx();
    let sys = brand_new_vm(OsId::Debian12); // 3306 is open, 3307 is not
    let started = std::time::Instant::now();
    let e = engine::apply(&web::steps(&cx), &cx, &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("10.0.1.10:3307") && e.to_string().contains("web.db.vip"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(e.kind.exit_code(), 3);
}

#[test]
fn a_second_web_node_does_not_install_again() {
    let os = OsId::Debian12;
    let first = brand_new_vm(os);
    let n1 = node(os);
    engine::apply(&web::steps(&n1.cx()), &n1.cx(), &first).unwrap();
    // web-2: its own machine, the same database (which now holds the site).
    let second = brand_new_vm(os);
    second.set_fact("wp.installed", "1");
    let n2 = super::Node::new(
        os,
        "web-2",
        "10.0.2.5",
        "10.0.1.10",
        &web_yaml(TARBALL, &sha256(&mini_wordpress("6.1.9")), ""),
        crate::common::SECRET,
    );
    engine::apply(&web::steps(&n2.cx()), &n2.cx(), &second).unwrap();
    assert_eq!(second.fact("wp.installs"), None, "web-2 found the site and did not install");
    assert_eq!(
        second.read("/var/www/wordpress/wp-config.php").unwrap(),
        first.read("/var/www/wordpress/wp-config.php").unwrap()
    );
}

#[test]
fn without_the_tarball_it_is_downloaded_and_verified() {
    let os = OsId::Debian12;
    let bytes = mini_wordpress("6.1.9");
    let yaml =
        web_yaml(TARBALL, &sha256(&bytes), "  wordpress_url: https://downloads.example.org/wordpress-6.1.9.tar.gz\n");
    let node = Node::standard(os, &yaml);
    let cx = node.cx();
    let sys = brand_new_vm(os);
    sys.remove(TARBALL);
    let plan = engine::plan(&web::steps(&cx), &cx, &sys).unwrap();
    let tree: Vec<String> = plan.steps[1].actions.iter().map(|a| a.describe()).collect();
    assert!(
        tree[0].starts_with("download https://downloads.example.org/") && tree[1].starts_with("unpack"),
        "{tree:?}"
    );
    sys.serve_download("https://downloads.example.org/wordpress-6.1.9.tar.gz", b"tampered".to_vec());
    let e = engine::apply(&web::steps(&cx), &cx, &sys).unwrap_err();
    assert!(e.to_string().contains("pinned sha256") && sys.read(TARBALL).unwrap().is_none(), "{e}");
    sys.serve_download("https://downloads.example.org/wordpress-6.1.9.tar.gz", bytes.clone());
    engine::apply(&web::steps(&cx), &cx, &sys).unwrap();
    assert_eq!(sys.read(TARBALL).unwrap().unwrap(), bytes);
    assert!(engine::plan(&web::steps(&cx), &cx, &sys).unwrap().is_converged());
}

#[test]
fn bad_web_inputs_are_exit_2_before_anything_is_touched() {
    let sha = sha256(b"x");
    let cases = [
        (format!("web:\n  wordpress_tarball: {TARBALL}\n"), "web.wordpress_sha256 is not set"),
        (web_yaml(TARBALL, "abc", ""), "not 64 hexadecimal"),
        (web_yaml(TARBALL, &sha, "  table_prefix: \"wp'; --\"\n"), "web.table_prefix"),
        (web_yaml(TARBALL, &sha, "  site_url: \"http://x/'\"\n"), "web.site_url"),
        (web_yaml(TARBALL, &sha, "  admin_email: nobody\n"), "web.admin_email"),
        (web_yaml(TARBALL, &sha, "  docroot: /\n"), "web.docroot"),
        (web_yaml("/nonexistent/wordpress.tar.gz", &sha, ""), "nowhere to get WordPress from"),
    ];
    for (yaml, want) in cases {
        let node = Node::standard(OsId::Debian12, &yaml);
        let sys = brand_new_vm(OsId::Debian12);
        let e = hainit::roles::validate(&node.cx(), &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Input, "{yaml}: {e}");
        assert!(e.to_string().contains(want), "{yaml}: {e}");
        assert!(sys.commands().is_empty(), "validation ran commands");
    }
    // The share: required (the tag, else web.share), and an NFS export or `local`.
    let yaml = web_yaml(TARBALL, &sha, "");
    let no_share = [("hainit-role", "web"), ("hainit-cluster", "wpcluster"), ("hainit-vip", "10.0.1.10")];
    let bad_share = [
        ("hainit-role", "web"),
        ("hainit-cluster", "wpcluster"),
        ("hainit-vip", "10.0.1.10"),
        ("hainit-share", "nfs://st/x"),
    ];
    for (tags, want) in [(&no_share[..], "tag hainit-share is missing"), (&bad_share[..], "\"nfs://st/x\"")] {
        let node = Node::with_tags(OsId::Debian12, "web-1", "10.0.2.4", tags, &yaml, crate::common::SECRET);
        let sys = brand_new_vm(OsId::Debian12);
        let e = hainit::roles::validate(&node.cx(), &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Input, "{tags:?}: {e}");
        assert!(e.to_string().contains(want), "{tags:?}: {e}");
    }
    let node = node(OsId::Debian12);
    hainit::roles::validate(&node.cx(), &brand_new_vm(OsId::Debian12)).unwrap();
}

/// A web node given only the web tier's values (config `web_secrets`, never the shared secret)
/// plans the very same actions, secrets included, and converges: `roles::tier_purposes` covers
/// everything the web role derives.
#[test]
fn the_web_tier_secrets_alone_converge_the_same_node() {
    use hainit::engine::Context;
    use hainit::inventory::Role;
    use hainit::secrets::{tier_json, ScopedSecrets, Secrets, SharedSecret};
    let master = SharedSecret::try_new(crate::common::SECRET, "test").unwrap();
    let purposes = hainit::roles::tier_purposes(Role::Web);
    let values = serde_json::from_str(&tier_json(&master, &purposes)).unwrap();
    let scoped = Secrets::Scoped(ScopedSecrets::try_new(&values, &purposes, "web_secrets").unwrap());
    for (os, name) in OSES {
        let node = node(os);
        let with_master = node.cx();
        let cx = Context { secrets: &scoped, ..node.cx() };
        let plan = |cx: &Context| engine::plan(&web::steps(cx), cx, &brand_new_vm(os)).unwrap();
        let (a, b) = (plan(&with_master), plan(&cx));
        for (x, y) in a.steps.iter().zip(&b.steps) {
            assert_eq!(x.actions, y.actions, "{name}: {}", x.name);
        }
        let sys = brand_new_vm(os);
        engine::apply(&web::steps(&cx), &cx, &sys).unwrap();
        assert!(engine::plan(&web::steps(&cx), &cx, &sys).unwrap().is_converged(), "{name}");
        assert_eq!(sys.fact("wp.installs").as_deref(), Some("1"), "{name}");
    }
}

/// The shared uploads' decision matrix: what is on the mount point decides mount, refuse or leave.
#[test]
fn the_share_is_mounted_only_over_an_empty_root_owned_directory() {
    let os = OsId::Debian12;
    let node = node(os);
    let cx = node.cx();
    let steps = web::steps(&cx);
    let share_step = |sys: &FakeSystem| {
        let plan = engine::plan(&steps, &cx, sys);
        plan.map(|p| p.steps.into_iter().find(|s| s.name == "web.share.uploads").unwrap().actions)
    };

    // Files on the local disk where the share would go: mounting would hide them; refused.
    let sys = brand_new_vm(os);
    engine::apply(&steps[..6], &cx, &sys).unwrap(); // up to the tree's permissions
    sys.add_file(&format!("{UPLOADS}/2026/05/cat.png"), "png", 0o644);
    let e = share_step(&sys).unwrap_err();
    assert!(e.to_string().contains("holds files on this node's own disk") && e.to_string().contains(UPLOADS), "{e}");
    assert!(sys.commands().iter().all(|c| c[..2] != ["systemctl", "start"]), "nothing mounted");

    // Something else mounted there: named, not unmounted.
    let sys = brand_new_vm(os);
    sys.add_file(
        "/proc/self/mountinfo",
        format!("22 1 254:0 / / rw - ext4 /dev/vda rw\n51 22 0:48 / {UPLOADS} rw - nfs4 10.9.9.9:/old rw\n"),
        0o444,
    );
    let e = share_step(&sys).unwrap_err();
    assert!(
        e.to_string().contains("mounted from 10.9.9.9:/old (nfs4), not from") && e.to_string().contains(SHARE),
        "{e}"
    );

    // The share does not answer: exit 3 (the boot unit retries), and the directory underneath
    // stays root's, so PHP cannot write uploads to this node's disk meanwhile.
    let sys = brand_new_vm(os);
    sys.reply(&["systemctl", "start", MOUNT_UNIT], Output::fail(1, "Job failed. See journalctl -xe.\n"));
    let e = engine::apply(&steps, &cx, &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("web.share.uploads") && e.to_string().contains("mount"), "{e}");
    let under = sys.meta(UPLOADS).unwrap().unwrap();
    assert_eq!((under.uid, under.mode), (0, 0o755), "the mount point is root's while unmounted");
    assert!(sys.read("/var/lib/hainit/www/healthz.php").unwrap().is_none(), "later steps did not run");

    // Mounted: a changed unit is reloaded, never remounted under a running site.
    let sys = brand_new_vm(os);
    engine::apply(&steps, &cx, &sys).unwrap();
    let unit = format!("/etc/systemd/system/{MOUNT_UNIT}");
    sys.add_file(&unit, "[Mount]\nOptions=vers=4.0\n", 0o644);
    let lines: Vec<String> = share_step(&sys).unwrap().iter().map(|a| a.describe()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&format!("file  {unit}")) && lines[1].contains("daemon-reload"), "{lines:?}");
}

/// `web.share: local` (one web node): a plain directory of this node, PHP's; no mount unit.
#[test]
fn a_local_share_is_a_directory_of_this_node() {
    let os = OsId::El9;
    let yaml = web_yaml(TARBALL, &sha256(&mini_wordpress("6.1.9")), "  share: local\n");
    let tags = [("hainit-role", "web"), ("hainit-cluster", "wpcluster"), ("hainit-vip", "10.0.1.10")];
    let node = Node::with_tags(os, "web-1", "10.0.2.4", &tags, &yaml, crate::common::SECRET);
    let cx = node.cx();
    let sys = brand_new_vm(os);
    engine::apply(&web::steps(&cx), &cx, &sys).unwrap();
    let uploads = sys.meta(UPLOADS).unwrap().unwrap();
    assert_eq!((uploads.kind, uploads.uid, uploads.mode), (hainit::system::FileKind::Dir, 48, 0o755));
    assert!(sys.commands().iter().all(|c| !c.iter().any(|a| a.ends_with(".mount"))), "no mount unit");
    assert!(engine::plan(&web::steps(&cx), &cx, &sys).unwrap().is_converged());
    let healthz = sys.read_string("/var/lib/hainit/www/healthz.php").unwrap().unwrap();
    assert!(!healthz.contains("nothing is mounted") && healthz.contains("does not take a write"), "{healthz}");
}

/// The code is root's: a tree that PHP owned (an older hainit, a hand-made site) is handed to root,
/// except the uploads (PHP's) and wp-config.php (root:<web group> 0640).
#[test]
fn php_cannot_write_the_code() {
    let os = OsId::Debian12;
    let node = node(os);
    let cx = node.cx();
    let sys = brand_new_vm(os);
    let steps = web::steps(&cx);
    engine::apply(&steps, &cx, &sys).unwrap();
    let www = hainit::system::TreeSpec {
        path: "/var/www/wordpress".into(),
        owner: "www-data".into(),
        group: "www-data".into(),
        dir_mode: 0o775,
        file_mode: 0o664,
        except: vec![],
    };
    sys.fix_tree(&www).unwrap();
    let plan = engine::plan(&steps, &cx, &sys).unwrap();
    let changed: Vec<&str> = plan.steps.iter().filter(|s| !s.actions.is_empty()).map(|s| s.name).collect();
    assert_eq!(changed, ["web.config.wp-config", "web.permissions.tree", "web.share.uploads"], "{}", plan.to_text());
    engine::apply(&steps, &cx, &sys).unwrap();
    for (path, want) in [
        ("/var/www/wordpress/index.php", (0, 0, 0o644)),
        ("/var/www/wordpress/wp-includes", (0, 0, 0o755)),
        ("/var/www/wordpress/wp-content/themes/index.php", (0, 0, 0o644)),
        ("/var/www/wordpress/wp-config.php", (0, 33, 0o640)),
        (UPLOADS, (33, 33, 0o755)),
    ] {
        let m = sys.meta(path).unwrap().unwrap();
        assert_eq!((m.uid, m.gid, m.mode), want, "{path}");
    }
}
