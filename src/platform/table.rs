//! The one table of OS differences. Every cell comes from shared/reference (section in the
//! comment); steps read fields, they never branch on the OS.

use std::collections::BTreeSet;

use crate::cib::line::Version;
use crate::dialect::{DrbdDialect, PcsDialect};
use crate::error::{Error, Result};
use crate::system::{Cmd, Output};

use super::OsId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Yum,
    Dnf,
    Apt,
}

impl PackageManager {
    /// One read-only query for whether each of `packages` is installed: the name and state of
    /// each (dpkg-query), the name of each installed one (rpm).
    pub fn installed_query(self, packages: &[&str]) -> Cmd {
        match self {
            PackageManager::Yum | PackageManager::Dnf => Cmd::new("rpm").args(["-q", "--qf", "%{NAME}\\n"]),
            PackageManager::Apt => Cmd::new("dpkg-query").args(["-W", "-f=${Package} ${db:Status-Abbrev}\\n"]),
        }
        .args(packages.iter().copied())
    }

    /// The packages of `wanted` that the answer to `installed_query(wanted)` says are not
    /// installed. dpkg-query exits 1 when it knows some package of no name asked (those are
    /// missing), and lists removed packages whose conffiles remain (`rc`): only `ii` counts. rpm
    /// exits with the number of packages not installed. An answer that does not account for the
    /// packages asked, or any other exit, is an error: a query that failed is no state.
    pub fn missing<'a>(self, wanted: &[&'a str], out: &Output) -> Result<Vec<&'a str>> {
        let program = match self {
            PackageManager::Yum | PackageManager::Dnf => "rpm -q",
            PackageManager::Apt => "dpkg-query -W",
        };
        let failed = || Error::step(format!("{program} {} exited {:?}: {}", wanted.join(" "), out.code, out.tail()));
        let mut listed = BTreeSet::new();
        let mut installed = BTreeSet::new();
        match self {
            PackageManager::Yum | PackageManager::Dnf => {
                // Installed: its name; not installed: a sentence naming it (counted by the exit).
                installed.extend(out.stdout.lines().map(str::trim).filter(|l| wanted.contains(l)));
            }
            PackageManager::Apt => {
                for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
                    let (name, state) = line
                        .split_once(' ')
                        .ok_or_else(|| Error::step(format!("{program}: a line without a package state: {line:?}")))?;
                    listed.insert(name);
                    if state.starts_with("ii") {
                        installed.insert(name);
                    }
                }
            }
        }
        let missing: Vec<&str> = wanted.iter().copied().filter(|p| !installed.contains(p)).collect();
        let answered = match (self, out.code) {
            (PackageManager::Apt, Some(0)) => wanted.iter().all(|p| listed.contains(p)),
            (PackageManager::Apt, Some(1)) => wanted.iter().any(|p| !listed.contains(p)),
            (PackageManager::Yum | PackageManager::Dnf, Some(n)) => {
                usize::try_from(n).is_ok_and(|n| n == missing.len().min(255))
            }
            _ => false,
        };
        if answered {
            Ok(missing)
        } else {
            Err(failed())
        }
    }

    /// Commands that install `packages` without asking anything, from the repositories the image
    /// has: apt refreshes its lists first (cloud images ship none), skips recommends and keeps
    /// configuration files hainit changed.
    pub fn install_cmds(self, packages: &[&str]) -> Vec<Cmd> {
        let slow = std::time::Duration::from_secs(1800);
        match self {
            PackageManager::Yum => vec![Cmd::new("yum").args(["install", "-y"]).args(packages.iter().copied())],
            PackageManager::Dnf => vec![Cmd::new("dnf").args(["install", "-y"]).args(packages.iter().copied())],
            PackageManager::Apt => vec![
                Cmd::new("apt-get").args(["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"),
                Cmd::new("apt-get")
                    .args(["install", "-y", "-q", "--no-install-recommends"])
                    .args(["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"])
                    .args(packages.iter().copied())
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            ],
        }
        .into_iter()
        .map(|c| c.timeout(slow))
        .collect()
    }
}

#[derive(Debug)]
pub struct Platform {
    pub id: OsId,
    pub package_manager: PackageManager,
    /// Extra repositories the image must have enabled (EL `ha`/`highavailability`, ELRepo, EPEL).
    pub repositories: &'static [&'static str],
    pub selinux: bool,
    pub firewalld: bool,
    pub pcs: PcsDialect,
    /// Default DRBD dialect; the loaded kernel module's version overrides it at run time (§3.1).
    pub drbd: DrbdDialect,
    /// Arguments that make `crm_mon` print XML (§2.9: CentOS 7 has only `--as-xml`).
    pub crm_mon_xml: &'static [&'static str],
    /// Pacemaker's fencing daemon, by process name (Pacemaker 1.1: `stonithd`).
    pub fencer: &'static str,
    /// The Pacemaker this OS ships, which decides the CIB's line (cib::line). `render` and a plan
    /// made before Pacemaker is installed use it; otherwise `pacemakerd --version` decides.
    pub pacemaker: Version,
    pub db: DbPlatform,
    pub web: WebPlatform,
}

#[derive(Debug)]
pub struct DbPlatform {
    pub packages: &'static [&'static str],
    pub mariadb_service: &'static str,
    /// What `ocf:heartbeat:mysql` starts (§4.1).
    pub mysqld_binary: &'static str,
    pub my_cnf: &'static str,
    /// Drop-in directory for hainit's server settings.
    pub my_cnf_dir: &'static str,
    pub mysql_pid: &'static str,
    pub mysql_socket: &'static str,
    pub mysql_log: &'static str,
    pub mysql_install_db: &'static str,
    /// `nc` with `-k`, for ocf:heartbeat:azure-lb (§4.3).
    pub nc: &'static str,
    pub drbd_scripts: &'static str,
    /// Arguments for `mysql_install_db` besides `--datadir` (MariaDB 10.x skips the test database).
    pub mysql_install_args: &'static [&'static str],
    /// The table of accounts: `mysql.user` up to 10.3, `mysql.global_priv` from 10.4 (where
    /// mysql.user became a view).
    pub mysql_users_table: &'static str,
    /// A Python that still has the `crypt` module, to check the hacluster password's hash.
    pub python: &'static str,
    /// ocf:heartbeat:azure-events-az ships with the resource agents and Pacemaker has
    /// allow-unhealthy-nodes (2.1.3): what `db.timing_profile: fast` needs. Only where the agent's
    /// metadata was checked (Debian 12's resource-agents 4.12).
    pub scheduled_events: bool,
    /// What `db.stonith: sbd` adds: the sbd daemon and the fence_sbd agent (Debian ships it in
    /// fence-agents; EL in fence-agents-sbd).
    pub sbd_packages: &'static [&'static str],
    /// The sbd daemon's environment file (the unit's EnvironmentFile).
    pub sbd_config: &'static str,
}

#[derive(Debug)]
pub struct WebPlatform {
    pub packages: &'static [&'static str],
    pub nginx_service: &'static str,
    pub nginx_conf_dir: &'static str,
    pub php_fpm_service: &'static str,
    pub php_fpm_pool_dir: &'static str,
    /// `listen` of hainit's pool: a unix socket path, or `127.0.0.1:9000` on CentOS 7 (§6.6).
    pub php_fpm_listen: &'static str,
    pub php_ini: &'static str,
    pub php_binary: &'static str,
    /// User and group php-fpm runs as and that owns the WordPress tree.
    pub web_user: &'static str,
    pub web_group: &'static str,
    pub nginx_user: &'static str,
    pub log_dir: &'static str,
    /// nginx's main configuration. hainit renders the whole file: EL's stock one carries a default
    /// server on :80 and Debian's includes sites-enabled/default, and ours replaces both (§6.6).
    pub nginx_conf: &'static str,
    pub nginx_pid: &'static str,
    /// Dynamic-module snippets the stock nginx.conf includes (kept so packaged modules still load).
    pub nginx_modules: &'static str,
    pub nginx_mime_types: &'static str,
    pub nginx_binary: &'static str,
    /// The FPM binary, for `-t` before a restart.
    pub php_fpm_binary: &'static str,
    /// The distro's stock pool; hainit replaces it with a comment so only hainit's pool runs
    /// (CentOS 7's listens on 127.0.0.1:9000, where hainit's pool listens).
    pub php_fpm_stock_pool: &'static str,
    /// ini drop-in directory the FPM SAPI reads (cgi.fix_pathinfo=0 goes there, php.ini stays stock).
    pub php_ini_dir: &'static str,
}

pub fn platform(id: OsId) -> &'static Platform {
    match id {
        OsId::Centos7 => &CENTOS7,
        OsId::El8 => &EL8,
        OsId::El9 => &EL9,
        OsId::Debian12 => &DEBIAN12,
    }
}

// §7.2 package map; §4.1 MariaDB paths on EL; §6.6 nginx/php-fpm. CentOS 7's PHP 5.4 cannot run a
// current WordPress (§6.4): the image uses Software Collections' rh-php73.
static CENTOS7: Platform = Platform {
    id: OsId::Centos7,
    package_manager: PackageManager::Yum,
    repositories: &["base (vault.centos.org 7.9.2009)", "elrepo", "epel (archive)", "centos-sclo-rh"],
    selinux: true,
    firewalld: true,
    pcs: PcsDialect::V09,
    drbd: DrbdDialect::V84,
    crm_mon_xml: &["--as-xml"],
    fencer: "stonithd",
    pacemaker: Version(1, 1, 23),
    db: DbPlatform {
        packages: &[
            "pcs",
            "pacemaker",
            "corosync",
            "resource-agents",
            "fence-agents-azure-arm",
            "nmap-ncat",
            "kmod-drbd84",
            "drbd84-utils",
            "mariadb-server",
            "mariadb",
            "e2fsprogs",
            "xfsprogs",
            "gdisk",
        ],
        mariadb_service: "mariadb",
        mysqld_binary: "/usr/bin/mysqld_safe",
        my_cnf: "/etc/my.cnf",
        my_cnf_dir: "/etc/my.cnf.d",
        mysql_pid: "/var/run/mariadb/mariadb.pid",
        mysql_socket: "/var/lib/mysql/mysql.sock",
        mysql_log: "/var/log/mariadb/mariadb.log",
        mysql_install_db: "/usr/bin/mysql_install_db",
        nc: "/usr/bin/nc",
        drbd_scripts: "/usr/lib/drbd",
        // MariaDB 5.5: no --skip-test-db; hainit's SQL drops the test database.
        mysql_install_args: &["--user=mysql"],
        mysql_users_table: "mysql.user",
        python: "/usr/bin/python",
        scheduled_events: false,
        sbd_packages: &["sbd", "fence-agents-sbd"],
        sbd_config: "/etc/sysconfig/sbd",
    },
    web: WebPlatform {
        // rh-php73 is the newest PHP in CentOS 7's Software Collections: WordPress 6.x runs on it
        // (6.6 needs 7.2.24); WordPress 7.0 will need 7.4, which only third-party repos have (§6.4).
        // policycoreutils-python has semanage (wp-content's SELinux file context).
        packages: &[
            "nginx",
            "rh-php73-php-fpm",
            "rh-php73-php-cli",
            "rh-php73-php-mysqlnd",
            "rh-php73-php-xml",
            "mariadb",
            "policycoreutils-python",
            "nfs-utils",
        ],
        nginx_service: "nginx",
        nginx_conf_dir: "/etc/nginx/conf.d",
        php_fpm_service: "rh-php73-php-fpm",
        php_fpm_pool_dir: "/etc/opt/rh/rh-php73/php-fpm.d",
        php_fpm_listen: "127.0.0.1:9000",
        php_ini: "/etc/opt/rh/rh-php73/php.ini",
        php_binary: "/opt/rh/rh-php73/root/usr/bin/php",
        web_user: "apache",
        web_group: "apache",
        nginx_user: "nginx",
        log_dir: "/var/log/nginx",
        nginx_conf: "/etc/nginx/nginx.conf",
        nginx_pid: "/run/nginx.pid",
        nginx_modules: "/usr/share/nginx/modules/*.conf",
        nginx_mime_types: "/etc/nginx/mime.types",
        nginx_binary: "/usr/sbin/nginx",
        php_fpm_binary: "/opt/rh/rh-php73/root/usr/sbin/php-fpm",
        php_fpm_stock_pool: "/etc/opt/rh/rh-php73/php-fpm.d/www.conf",
        php_ini_dir: "/etc/opt/rh/rh-php73/php.d",
    },
};

static EL8: Platform = Platform {
    id: OsId::El8,
    package_manager: PackageManager::Dnf,
    repositories: &["ha", "elrepo"],
    selinux: true,
    firewalld: true,
    pcs: PcsDialect::V010,
    drbd: DrbdDialect::V9,
    crm_mon_xml: &["--output-as=xml"],
    fencer: "pacemaker-fenced",
    // EL8 spans two lines: 2.0 up to 8.4 (2.0.5 the last), 2.1 from 8.5. The default is the 2.0
    // line, so `render --os el8` shows it; an installed 2.1 is found at run time.
    pacemaker: Version(2, 0, 5),
    db: EL_DB,
    web: EL_WEB,
};

static EL9: Platform = Platform {
    id: OsId::El9,
    package_manager: PackageManager::Dnf,
    repositories: &["highavailability", "elrepo"],
    selinux: true,
    firewalld: true,
    pcs: PcsDialect::V011,
    drbd: DrbdDialect::V9,
    crm_mon_xml: &["--output-as=xml"],
    fencer: "pacemaker-fenced",
    pacemaker: Version(2, 1, 7),
    db: DbPlatform {
        // RHEL 9 moved azure-lb into resource-agents-cloud (§4.3).
        packages: &[
            "pcs",
            "pacemaker",
            "corosync",
            "resource-agents",
            "resource-agents-cloud",
            "fence-agents-azure-arm",
            "nmap-ncat",
            "kmod-drbd9x",
            "drbd9x-utils",
            "mariadb-server",
            "mariadb",
            "e2fsprogs",
            "xfsprogs",
            "gdisk",
        ],
        mysql_users_table: "mysql.global_priv",
        // EL9 has no platform-python; its python3 (3.9) still has `crypt`.
        python: "/usr/bin/python3",
        ..EL_DB
    },
    web: EL_WEB,
};

const EL_DB: DbPlatform = DbPlatform {
    packages: &[
        "pcs",
        "pacemaker",
        "corosync",
        "resource-agents",
        "fence-agents-azure-arm",
        "nmap-ncat",
        "kmod-drbd9x",
        "drbd9x-utils",
        "mariadb-server",
        "mariadb",
        "e2fsprogs",
        "xfsprogs",
        "gdisk",
    ],
    mariadb_service: "mariadb",
    mysqld_binary: "/usr/bin/mysqld_safe",
    my_cnf: "/etc/my.cnf",
    my_cnf_dir: "/etc/my.cnf.d",
    mysql_pid: "/run/mariadb/mariadb.pid",
    mysql_socket: "/var/lib/mysql/mysql.sock",
    mysql_log: "/var/log/mariadb/mariadb.log",
    mysql_install_db: "/usr/bin/mysql_install_db",
    nc: "/usr/bin/nc",
    drbd_scripts: "/usr/lib/drbd",
    // EL8's default stream is MariaDB 10.3 (mysql.user is a table), EL9 has 10.5.
    mysql_install_args: &["--user=mysql", "--skip-test-db"],
    mysql_users_table: "mysql.user",
    python: "/usr/libexec/platform-python",
    scheduled_events: false,
    sbd_packages: &["sbd", "fence-agents-sbd"],
    sbd_config: "/etc/sysconfig/sbd",
};

const EL_WEB: WebPlatform = WebPlatform {
    packages: &[
        "nginx",
        "php-fpm",
        "php-cli",
        "php-mysqlnd",
        "php-xml",
        "mariadb",
        "policycoreutils-python-utils",
        "nfs-utils",
    ],
    nginx_service: "nginx",
    nginx_conf_dir: "/etc/nginx/conf.d",
    php_fpm_service: "php-fpm",
    php_fpm_pool_dir: "/etc/php-fpm.d",
    php_fpm_listen: "/run/php-fpm/hainit.sock",
    php_ini: "/etc/php.ini",
    php_binary: "/usr/bin/php",
    web_user: "apache",
    web_group: "apache",
    nginx_user: "nginx",
    log_dir: "/var/log/nginx",
    nginx_conf: "/etc/nginx/nginx.conf",
    nginx_pid: "/run/nginx.pid",
    nginx_modules: "/usr/share/nginx/modules/*.conf",
    nginx_mime_types: "/etc/nginx/mime.types",
    nginx_binary: "/usr/sbin/nginx",
    php_fpm_binary: "/usr/sbin/php-fpm",
    php_fpm_stock_pool: "/etc/php-fpm.d/www.conf",
    php_ini_dir: "/etc/php.d",
};

// Debian 12: pcs 0.11.5, pacemaker 2.1.5, in-kernel DRBD 8.4.11 under drbd-utils 9.22 (§2.1, §3.1).
static DEBIAN12: Platform = Platform {
    id: OsId::Debian12,
    package_manager: PackageManager::Apt,
    repositories: &[],
    selinux: false,
    firewalld: false,
    pcs: PcsDialect::V011,
    drbd: DrbdDialect::V84,
    crm_mon_xml: &["--output-as=xml"],
    fencer: "pacemaker-fenced",
    pacemaker: Version(2, 1, 5),
    db: DbPlatform {
        packages: &[
            "pcs",
            "pacemaker",
            "corosync",
            "resource-agents",
            "fence-agents",
            "python3-azure",
            "netcat-openbsd",
            "drbd-utils",
            "mariadb-server",
            "mariadb-client",
            "e2fsprogs",
            "xfsprogs",
            "gdisk",
        ],
        mariadb_service: "mariadb",
        mysqld_binary: "/usr/sbin/mariadbd",
        my_cnf: "/etc/mysql/my.cnf",
        my_cnf_dir: "/etc/mysql/mariadb.conf.d",
        mysql_pid: "/run/mysqld/mysqld.pid",
        mysql_socket: "/run/mysqld/mysqld.sock",
        mysql_log: "/var/log/mysql/error.log",
        mysql_install_db: "/usr/bin/mariadb-install-db",
        nc: "/usr/bin/nc",
        drbd_scripts: "/usr/lib/drbd",
        mysql_install_args: &["--user=mysql", "--skip-test-db"],
        mysql_users_table: "mysql.global_priv",
        python: "/usr/bin/python3",
        scheduled_events: true,
        sbd_packages: &["sbd"],
        sbd_config: "/etc/default/sbd",
    },
    web: WebPlatform {
        packages: &["nginx", "php8.2-fpm", "php8.2-cli", "php8.2-mysql", "php8.2-xml", "mariadb-client", "nfs-common"],
        nginx_service: "nginx",
        nginx_conf_dir: "/etc/nginx/conf.d",
        php_fpm_service: "php8.2-fpm",
        php_fpm_pool_dir: "/etc/php/8.2/fpm/pool.d",
        php_fpm_listen: "/run/php/hainit.sock",
        php_ini: "/etc/php/8.2/fpm/php.ini",
        php_binary: "/usr/bin/php8.2",
        web_user: "www-data",
        web_group: "www-data",
        nginx_user: "www-data",
        log_dir: "/var/log/nginx",
        nginx_conf: "/etc/nginx/nginx.conf",
        nginx_pid: "/run/nginx.pid",
        nginx_modules: "/etc/nginx/modules-enabled/*.conf",
        nginx_mime_types: "/etc/nginx/mime.types",
        nginx_binary: "/usr/sbin/nginx",
        php_fpm_binary: "/usr/sbin/php-fpm8.2",
        php_fpm_stock_pool: "/etc/php/8.2/fpm/pool.d/www.conf",
        php_ini_dir: "/etc/php/8.2/fpm/conf.d",
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: [&str; 3] = ["pacemaker", "drbd-utils", "mariadb-server"];

    fn out(code: i32, stdout: &str) -> Output {
        Output { code: Some(code), stdout: stdout.into(), stderr: "dpkg-query: no packages found matching x".into() }
    }

    #[test]
    fn dpkg_query_only_ii_is_installed_and_an_unknown_package_is_missing() {
        let apt = PackageManager::Apt;
        let all = "pacemaker ii \ndrbd-utils ii \nmariadb-server ii \n";
        assert_eq!(apt.missing(&WANTED, &out(0, all)).unwrap(), Vec::<&str>::new());
        let removed = "pacemaker ii \ndrbd-utils rc \nmariadb-server un \n";
        assert_eq!(apt.missing(&WANTED, &out(0, removed)).unwrap(), ["drbd-utils", "mariadb-server"]);
        // Exit 1: some package of no name dpkg knows; it is missing, the others answered.
        assert_eq!(apt.missing(&WANTED, &out(1, "pacemaker ii \nmariadb-server ii \n")).unwrap(), ["drbd-utils"]);
        let argv = apt.installed_query(&WANTED).argv_redacted();
        assert_eq!(argv[..3], ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\\n"]);
        assert_eq!(argv[3..], WANTED);
    }

    #[test]
    fn an_answer_that_does_not_account_for_every_package_is_an_error() {
        let apt = PackageManager::Apt;
        for (code, stdout) in [
            (0, "pacemaker ii \nmariadb-server ii \n"), // exit 0, but a package unlisted
            (1, "pacemaker ii \ndrbd-utils ii \nmariadb-server ii \n"), // exit 1, but all listed
            (2, ""),                                    // dpkg's database unreadable
            (127, ""),                                  // no dpkg-query
            (0, "pacemaker\n"),                         // no state
        ] {
            let e = apt.missing(&WANTED, &out(code, stdout)).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Step, "{code} {stdout:?}: {e}");
        }
        let e = apt.missing(&WANTED, &out(2, "")).unwrap_err().to_string();
        assert!(e.contains("dpkg-query -W pacemaker drbd-utils mariadb-server exited Some(2)"), "{e}");
        let killed = Output { code: None, ..out(0, "pacemaker ii \ndrbd-utils ii \nmariadb-server ii \n") };
        assert!(apt.missing(&WANTED, &killed).is_err());
    }

    #[test]
    fn rpm_exits_with_the_number_of_packages_not_installed() {
        for pm in [PackageManager::Yum, PackageManager::Dnf] {
            let installed = "pacemaker\npackage drbd-utils is not installed\nmariadb-server\n";
            assert_eq!(pm.missing(&WANTED, &out(1, installed)).unwrap(), ["drbd-utils"]);
            assert_eq!(pm.missing(&WANTED, &out(0, "pacemaker\ndrbd-utils\nmariadb-server\n")).unwrap().len(), 0);
            // A count that disagrees with the names (rpmdb trouble, a missing rpm) is an error.
            assert!(pm.missing(&WANTED, &out(1, "pacemaker\ndrbd-utils\nmariadb-server\n")).is_err());
            assert!(pm.missing(&WANTED, &out(0, "pacemaker\n")).is_err());
            assert!(pm.missing(&WANTED, &out(127, "")).is_err());
            let argv = pm.installed_query(&WANTED).argv_redacted();
            assert_eq!(argv[..3], ["rpm", "-q", "--qf"]);
        }
    }

    /// This machine's own dpkg-query (Debian, as CI): what it prints and how it exits is what the
    /// parse expects.
    #[test]
    fn the_real_dpkg_query_is_read_as_expected() {
        let apt = PackageManager::Apt;
        let run = |pkgs: &[&str]| {
            let o = std::process::Command::new("dpkg-query")
                .args(apt.installed_query(pkgs).argv_redacted()[1..].iter())
                .output()
                .expect("dpkg-query (Debian's dpkg) must be installed to run the tests");
            Output {
                code: o.status.code(),
                stdout: String::from_utf8_lossy(&o.stdout).into(),
                stderr: String::from_utf8_lossy(&o.stderr).into(),
            }
        };
        assert_eq!(apt.missing(&["dpkg", "coreutils"], &run(&["dpkg", "coreutils"])).unwrap(), Vec::<&str>::new());
        let asked = ["dpkg", "hainit-no-such-package"];
        assert_eq!(apt.missing(&asked, &run(&asked)).unwrap(), ["hainit-no-such-package"]);
    }
}
