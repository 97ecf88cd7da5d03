//! images/: the EL templates judged by Debian's packer (images/packer/validate.py) and their plugin
//! pin read from the template, the package lists against the platform table, the shared
//! provisioning script's functions run for real, the first-boot unit judged by systemd-analyze;
//! the Debian image's judge (images/azure/check-image.py) on small VHDs built here; and its upload
//! (scripts/azure/image.sh through scripts/deploy-azure.sh) against the fake `az` and `azcopy`.

use std::path::Path;
use std::process::{Command, Output};

use hainit::config::Config;
use hainit::platform::OsId;

use super::cloud_init::{sha256_hex, Serve};
use super::fake::{printed_azcopy, printed_calls, repo, text, Call, FakeAz};

const TEMPLATES: [(&str, OsId, &str); 2] =
    [("centos7.pkr.hcl", OsId::Centos7, "packages-centos7.txt"), ("rocky9.pkr.hcl", OsId::El9, "packages-el9.txt")];

fn packer(args: &[&str]) -> Output {
    // packer keeps a cache and checkpoint settings under HOME; keep them out of the real one.
    let home = tempfile::tempdir().unwrap();
    Command::new("packer")
        .args(args)
        .current_dir(repo("images/packer"))
        .env("HOME", home.path())
        .env("CHECKPOINT_DISABLE", "1")
        .env("PACKER_CACHE_DIR", home.path().join("cache"))
        .output()
        .unwrap()
}

/// images/packer/validate.py: `packer validate` as far as this machine's packer can.
fn validate(var: &str, template: &str) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new("python3")
        .arg(repo("images/packer/validate.py"))
        .args(["-var", var, template])
        .env("HOME", home.path())
        .env("CHECKPOINT_DISABLE", "1")
        .env("PACKER_CACHE_DIR", home.path().join("cache"))
        .output()
        .unwrap()
}

#[test]
fn templates_pass_packer_validate_and_fmt() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("hainit");
    std::fs::write(&bin, "stand-in for the musl binary").unwrap();
    let var = format!("hainit_binary={}", bin.display());
    for (template, _, _) in TEMPLATES {
        let out = validate(&var, template);
        assert!(out.status.success(), "packer validate {template}: {}{}", text(&out.stdout), text(&out.stderr));
        let out = packer(&["fmt", "-check", template]);
        assert!(out.status.success(), "packer fmt -check {template}: {}", text(&out.stdout));
        // Validation is real: a file provisioner with a missing source is refused.
        let out = validate("hainit_binary=/nonexistent/hainit", template);
        assert!(!out.status.success(), "{template} validated with a missing binary");
        assert!(text(&out.stdout).contains("/nonexistent/hainit"), "{}", text(&out.stdout));
    }
}

/// The minimum packer-plugin-azure: 2.3.0 is the first release whose build VM gets a Standard public
/// IP by default in every network mode (public_ip_sku from 2.1.x, #416; Standard by default, #450
/// and #469 in 2.3.0); Azure creates no Basic public IP since 2025-03-31. docs/support-matrix.md says so.
const PLUGIN_MIN: (u32, u32, u32) = (2, 3, 0);
/// Packer from 1.14.0 installs official plugins from HashiCorp's release site with `packer init`.
const PACKER_MIN: (u32, u32, u32) = (1, 14, 0);

fn version(v: &str) -> (u32, u32, u32) {
    let n: Vec<u32> = v.trim().split('.').map(|x| x.parse().unwrap_or_else(|_| panic!("version {v}"))).collect();
    assert_eq!(n.len(), 3, "version {v}");
    (n[0], n[1], n[2])
}

/// The lower bound of a constraint like ">= 2.3.0, < 3.0.0" (every part must be >= or <).
fn lower_bound(constraint: &str) -> (u32, u32, u32) {
    let mut lower = None;
    for part in constraint.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix(">=") {
            lower = Some(version(v));
        } else {
            assert!(part.starts_with('<'), "constraint part {part:?}: only >= and < bounds are pinned here");
        }
    }
    lower.unwrap_or_else(|| panic!("{constraint:?} has no lower bound"))
}

/// `name = "value"` directly or nested inside the first block that starts with `block` (its text up
/// to the `{`) in an HCL text.
fn hcl_attr(text: &str, block: &str, name: &str) -> Option<String> {
    let at = text.lines().scan(0, |pos, l| {
        let here = *pos;
        *pos += l.len() + 1;
        Some((here, l))
    });
    let start = at.into_iter().find(|(_, l)| l.trim_start().starts_with(block)).map(|(p, _)| p)?;
    let start = start + text[start..].find('{')?;
    let mut depth = 0;
    let mut end = text.len();
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = start + i;
                    break;
                }
            }
            _ => {}
        }
    }
    let body = &text[start..end];
    let line = body.lines().find(|l| l.trim_start().starts_with(&format!("{name} ")))?;
    Some(line.split('"').nth(1)?.to_string())
}

#[test]
fn templates_pin_a_plugin_that_creates_a_standard_public_ip() {
    let doc = std::fs::read_to_string(repo("docs/support-matrix.md")).unwrap();
    assert!(doc.contains("packer-plugin-azure >= 2.3.0") && doc.contains("packer >= 1.14.0"), "the documented minimum");
    for (template, _, _) in TEMPLATES {
        let hcl = std::fs::read_to_string(repo(&format!("images/packer/{template}"))).unwrap();
        assert_eq!(hcl_attr(&hcl, "azure =", "source").as_deref(), Some("github.com/hashicorp/azure"));
        let pin = hcl_attr(&hcl, "azure =", "version").expect("a version constraint");
        assert!(lower_bound(&pin) >= PLUGIN_MIN, "{template}: {pin} allows a plugin older than {PLUGIN_MIN:?}");
        let required = hcl_attr(&hcl, "packer {", "required_version").expect("required_version");
        assert!(lower_bound(&required) >= PACKER_MIN, "{template}: packer {required}");
        assert_eq!(hcl_attr(&hcl, "source \"azure-arm\"", "public_ip_sku").as_deref(), Some("Standard"), "{template}");
    }
    // The judge can fail: a pin below the minimum, an unbounded one.
    assert!(lower_bound(">= 2.1.6") < PLUGIN_MIN);
    assert!(std::panic::catch_unwind(|| lower_bound("~> 2")).is_err());
}

#[test]
fn templates_bake_pinned_wordpress_and_deprovision_last() {
    let mut pins = Vec::new();
    for (template, _, packages) in TEMPLATES {
        let hcl = std::fs::read_to_string(repo(&format!("images/packer/{template}"))).unwrap();
        let default_of = |var: &str| {
            let at = hcl.find(&format!("variable \"{var}\"")).unwrap_or_else(|| panic!("{template}: no {var}"));
            let rest = &hcl[at..];
            let line = rest.lines().find(|l| l.trim_start().starts_with("default")).unwrap();
            line.split('"').nth(1).unwrap().to_string()
        };
        let sha = default_of("wordpress_sha256");
        assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{sha}");
        let url = default_of("wordpress_url");
        assert!(
            url.starts_with("https://wordpress.org/wordpress-") && !url.contains("latest"),
            "{url}: a moving target"
        );
        pins.push((url, sha));
        assert!(hcl.contains(&format!("provision/{packages}")), "{template} uploads {packages}");
        assert!(
            hcl.contains("${path.root}/../systemd/hainit.service")
                && hcl.contains("${path.root}/../systemd/hainit-boot")
        );
        assert!(
            hcl.contains("${path.root}/../azure/rootfs/etc/udev/rules.d/80-hainit-azure-data-disks.rules"),
            "{template}: the /dev/disk/azure/data/by-lun rules, as the Debian image has them"
        );
        let provision = hcl.find("provision/el.sh").unwrap();
        let deprovision = hcl.find("waagent -force -deprovision+user").expect("Azure's deprovision step");
        assert!(deprovision > provision, "{template}: deprovision must be the last step");
        assert!(!hcl[deprovision..].contains("provisioner \""), "{template}: a step after the deprovision");
    }
    assert_eq!(pins[0], pins[1], "both images bake the same WordPress release");
}

fn listed(file: &str, role: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo(&format!("images/packer/provision/{file}"))).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter(|(r, _)| *r == role)
        .map(|(_, p)| p.trim().to_string())
        .collect()
}

#[test]
fn package_lists_are_the_platform_table() {
    for (_, os, file) in TEMPLATES {
        let p = os.platform();
        assert_eq!(listed(file, "db"), p.db.packages, "{file} db vs src/platform/table.rs {os}");
        assert_eq!(listed(file, "web"), p.web.packages, "{file} web vs src/platform/table.rs {os}");
        assert_eq!(listed(file, "sbd"), p.db.sbd_packages, "{file} sbd vs src/platform/table.rs {os}");
    }
}

/// `bash -c 'source el.sh; FUNCTION ARGS…'` (sourcing defines the functions, runs nothing).
fn el(function_call: &str, args: &[&str]) -> Output {
    let script = repo("images/packer/provision/el.sh");
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!("set -euo pipefail; source {}; {function_call} \"$@\"", script.display())).arg("el");
    for k in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(k);
    }
    cmd.args(args).output().unwrap()
}

#[test]
fn provisioning_reads_both_roles_packages_once() {
    let out = el("read_packages", &[repo("images/packer/provision/packages-centos7.txt").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    let p = OsId::Centos7.platform();
    let mut want: Vec<String> = Vec::new();
    for name in p.db.packages.iter().chain(p.db.sbd_packages).chain(p.web.packages) {
        if !want.iter().any(|w| w == name) {
            want.push(name.to_string());
        }
    }
    assert_eq!(got, want, "mariadb is in both roles and installed once");
}

#[test]
fn wordpress_is_installed_only_with_the_pinned_sha256_and_recorded_for_hainit() {
    let body = b"pretend wordpress-6.8.5.tar.gz".to_vec();
    let server = Serve::new(body.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("usr/share/hainit/wordpress.tar.gz");
    let url = format!("http://127.0.0.1:{}/wordpress-6.8.5.tar.gz", server.port);

    let wrong = sha256_hex(b"another release");
    let out = el("fetch_verified", &[&url, &wrong, dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("refusing"), "{}", text(&out.stderr));
    assert!(!dest.exists() && !Path::new(&format!("{}.part", dest.display())).exists());

    let out = el("fetch_verified", &[&url, "not-a-sha", dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(server.hits.load(std::sync::atomic::Ordering::SeqCst), 1, "a malformed pin downloads nothing");

    let sha = sha256_hex(&body);
    let out = el("fetch_verified", &[&url, &sha, dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&dest).unwrap(), body);

    let defaults = dir.path().join("usr/share/hainit/defaults.yaml");
    let out = el("write_defaults", &[defaults.to_str().unwrap(), "/usr/share/hainit/wordpress.tar.gz", &sha]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // hainit reads it as its image-defaults layer.
    let config = Config::load(None, |p| {
        Ok((p == hainit::config::IMAGE_DEFAULTS_PATH).then(|| std::fs::read_to_string(&defaults).unwrap()))
    })
    .unwrap();
    assert_eq!(config.web.wordpress_sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(config.web.wordpress_tarball, "/usr/share/hainit/wordpress.tar.gz");
}

#[test]
fn centos7_repositories_come_from_the_vault_and_set_the_dead_mirrors_aside() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("CentOS-Base.repo"), "[base]\nmirrorlist=http://mirrorlist.centos.org/\n").unwrap();
    let call = "VAULT_BASEURL=https://vault.centos.org/7.9.2009 SCLO_GPGKEY=k1 EPEL_BASEURL=https://e/7/\\$basearch/ \
                EPEL_GPGKEY=k2 ELREPO_BASEURL=https://elrepo/el7/\\$basearch/ ELREPO_GPGKEYS=k3 repos_centos7";
    let out = el(call, &[dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.path().join("CentOS-Base.repo").exists());
    assert!(dir.path().join("disabled-by-hainit/CentOS-Base.repo").exists());
    let repo_file = std::fs::read_to_string(dir.path().join("hainit-centos7.repo")).unwrap();
    for section in ["hainit-base", "hainit-updates", "hainit-extras", "hainit-sclo-rh", "hainit-epel", "hainit-elrepo"]
    {
        assert!(repo_file.contains(&format!("[{section}]")), "{section}");
    }
    assert!(repo_file.contains("baseurl=https://vault.centos.org/7.9.2009/os/$basearch/"), "{repo_file}");
    assert!(repo_file.contains("baseurl=https://vault.centos.org/7.9.2009/sclo/$basearch/rh/"));
    assert!(!repo_file.contains("mirrorlist"));
    assert_eq!(repo_file.matches("gpgcheck=1").count(), 6);
}

#[test]
fn first_boot_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(repo("images/systemd/hainit.service")).unwrap();
    for needed in ["After=network-online.target", "cloud-init.service", "Wants=network-online.target", "Type=oneshot"] {
        assert!(unit.contains(needed), "hainit.service lacks {needed}");
    }
    assert!(unit.contains("ExecStart=/usr/local/libexec/hainit-boot") && unit.contains("StandardError=journal"));
    // verify wants ExecStart to exist: point it at the repository's copy of hainit-boot.
    let dir = tempfile::tempdir().unwrap();
    let boot = repo("images/systemd/hainit-boot");
    let check = |text: &str| {
        let path = dir.path().join("hainit.service");
        std::fs::write(&path, text.replace("/usr/local/libexec/hainit-boot", boot.to_str().unwrap())).unwrap();
        Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap()
    };
    let out = check(&unit);
    assert!(out.status.success() && out.stderr.is_empty(), "systemd-analyze verify: {}", text(&out.stderr));
    let out = check(&unit.replace("Type=oneshot", "Type=oneshoot"));
    assert!(!out.stderr.is_empty(), "the judge can fail");
}

#[test]
fn the_image_takes_cloud_init_as_its_provisioning_agent_with_either_walinuxagent() {
    // OpenLogic's CentOS 7.9 provisions with an agent that reads Provisioning.Enabled/UseCloudInit;
    // agents from 2.2.45 on read Provisioning.Agent. Either way cloud-init processes custom-data.
    for (before, want) in [
        (
            "Provisioning.Enabled=y\nProvisioning.UseCloudInit=n\nResourceDisk.Format=y\nResourceDisk.EnableSwap=y\n",
            [
                "Provisioning.Enabled=n",
                "Provisioning.UseCloudInit=y",
                "ResourceDisk.Format=n",
                "ResourceDisk.EnableSwap=n",
            ]
            .as_slice(),
        ),
        (
            "Provisioning.Agent=auto\nResourceDisk.Format=y\n",
            ["Provisioning.Agent=cloud-init", "ResourceDisk.Format=n", "ResourceDisk.EnableSwap=n"].as_slice(),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("waagent.conf");
        std::fs::write(&conf, before).unwrap();
        let cfg_dir = dir.path().join("cloud.cfg.d");
        let out = el("azure_cloud_init", &[cfg_dir.to_str().unwrap(), conf.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let after = std::fs::read_to_string(&conf).unwrap();
        let lines: Vec<&str> = after.lines().collect();
        for w in want {
            assert_eq!(lines.iter().filter(|l| **l == *w).count(), 1, "{w} in\n{after}");
        }
        assert_eq!(lines.len(), want.len(), "every key once:\n{after}");
        // cloud-init itself judges the datasource file.
        let cfg = std::fs::read_to_string(cfg_dir.join("91-hainit-azure.cfg")).unwrap();
        assert!(cfg.contains("datasource_list: [ Azure ]"), "{cfg}");
        let file = dir.path().join("cfg.yaml");
        std::fs::write(&file, format!("#cloud-config\n{cfg}")).unwrap();
        let out = Command::new("cloud-init").args(["schema", "--config-file"]).arg(&file).output().unwrap();
        assert!(out.status.success(), "cloud-init schema: {}{}", text(&out.stdout), text(&out.stderr));
    }
    let out = el("azure_cloud_init", &["/nonexistent/cfg", "/nonexistent/waagent.conf"]);
    assert_eq!(out.status.code(), Some(1), "no agent, no image");
}

#[test]
fn the_first_boot_unit_has_no_start_timeout_in_any_systemd() {
    // `infinity` is unknown to CentOS 7's systemd 219, which would keep its 90 s default.
    let unit = std::fs::read_to_string(repo("images/systemd/hainit.service")).unwrap();
    let timeouts: Vec<&str> = unit.lines().filter(|l| l.starts_with("TimeoutStartSec=")).collect();
    assert_eq!(timeouts, ["TimeoutStartSec=0"]);
}

/// tests/fixtures/azure/mini-image.sh OUT FLAGS…, then images/azure/check-image.py on it.
fn judge_mini_image(flags: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let vhd = dir.path().join("mini.vhd");
    let out =
        Command::new("bash").arg(repo("tests/fixtures/azure/mini-image.sh")).arg(&vhd).args(flags).output().unwrap();
    assert!(out.status.success(), "mini-image.sh {flags:?}: {}", text(&out.stderr));
    let out = Command::new("python3").arg(repo("images/azure/check-image.py")).arg(&vhd).output().unwrap();
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn the_image_judge_passes_a_well_formed_image_and_names_each_fault() {
    let (code, out) = judge_mini_image(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("PASS VHD disk type fixed") && out.contains("PASS GPT has an EFI system partition"), "{out}");
    assert!(out.contains("PASS cloud-init schema accepts 99-hainit-azure.cfg"), "{out}");
    for (flag, failure) in [
        ("--dynamic", "FAIL VHD disk type fixed (2)"),
        ("--host-key", "FAIL no SSH host keys: ssh_host_ed25519_key"),
        ("--datasource-list", "FAIL cloud-init's datasource list is [Azure]"),
        ("--swap", "FAIL waagent.conf ResourceDisk.EnableSwap=n"),
        ("--no-hv-netvsc", "FAIL kernel module hv_netvsc.ko"),
        ("--wordpress-mismatch", "FAIL WordPress tarball sha256 = the pin in defaults.yaml"),
        ("--lab-layer", "FAIL nothing of the lab's layer: no /root/.ssh/authorized_keys"),
        ("--no-esp", "FAIL GPT has an EFI system partition"),
        ("--hainit-disabled", "FAIL hainit.service enabled"),
    ] {
        let (code, out) = judge_mini_image(&[flag]);
        assert_eq!(code, Some(1), "{flag} passed:\n{out}");
        assert!(out.contains(failure), "{flag}: no {failure:?} in\n{out}");
    }
}

// ---- the upload (scripts/azure/image.sh through scripts/deploy-azure.sh) ---------------------

const DEPLOY: &str = "scripts/deploy-azure.sh";
const SECRET: &str = "image-test-secret-0123456789abcdefghijklmnop";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![("HAINIT_SECRET", SECRET), ("HAINIT_RETRY_DELAY", "0")]
}

fn sha_of(vhd: &Path) -> String {
    std::fs::read_to_string(vhd.with_extension("vhd.sha256")).unwrap().split_whitespace().next().unwrap().into()
}

fn image_id(name: &str) -> String {
    format!("/subscriptions/7d1f0c3e-52b4-4a2e-9d0b-3c8f1e6a9b21/resourceGroups/hainit-images/providers/Microsoft.Compute/images/{name}")
}

fn position(calls: &[Call], command: &str) -> usize {
    calls.iter().position(|c| c.is(command)).unwrap_or_else(|| panic!("no {command} in {calls:#?}"))
}

#[test]
fn a_dry_run_without_an_image_flag_shows_the_upload_of_the_debian_image() {
    let az = FakeAz::new();
    let out = az.run(DEPLOY, &["--dry-run"], &env());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(az.calls().iter().all(|c| !c.mutates()), "a dry run changed something");
    let stdout = text(&out.stdout);
    let printed = printed_calls(&stdout);
    let sha = sha_of(&az.vhd());
    let name = format!("hainit-debian12-{}", &sha[..12]);
    let disk = printed.iter().find(|c| c.is("disk create") && c.has("--upload-type")).expect("an upload disk");
    assert_eq!(disk.value("--upload-type").as_deref(), Some("Upload"));
    let bytes = std::fs::metadata(az.vhd()).unwrap().len();
    assert_eq!(disk.value("--upload-size-bytes"), Some(bytes.to_string()), "the VHD's exact size, footer included");
    assert_eq!(disk.value("--hyper-v-generation").as_deref(), Some("V2"));
    let grant = printed.iter().find(|c| c.is("disk grant-access")).expect("a write SAS");
    assert_eq!(grant.value("--access-level").as_deref(), Some("Write"));
    assert_eq!(printed_azcopy(&stdout).len(), 1);
    let copy = &printed_azcopy(&stdout)[0];
    assert_eq!((copy[0].as_str(), copy[1].as_str()), ("copy", az.vhd().to_str().unwrap()));
    assert_eq!(&copy[3..], ["--blob-type", "PageBlob"]);
    let image = one_named(&printed, "image create", &name);
    assert_eq!(image.values("--tags"), [format!("hainit-sha256={sha}")]);
    assert_eq!(image.value("--hyper-v-generation").as_deref(), Some("V2"));
    assert!(image.value("--source").unwrap().ends_with(&format!("/disks/{name}-upload")));
    let (revoke, create) = (position(&printed, "disk revoke-access"), position(&printed, "image create"));
    assert!(
        position(&printed, "disk grant-access") < revoke
            && revoke < create
            && create < position(&printed, "disk delete")
    );
    // Every VM boots that image, as a Standard security type VM with a 30 GiB OS disk.
    let vms: Vec<&Call> = printed.iter().filter(|c| c.is("vm create")).collect();
    assert_eq!(vms.len(), 4);
    for vm in vms {
        assert_eq!(vm.value("--image"), Some(image_id(&name)));
        assert_eq!(vm.value("--security-type").as_deref(), Some("Standard"));
        assert_eq!(vm.value("--os-disk-size-gb").as_deref(), Some("30"));
        assert!(!vm.has("--plan-publisher"));
    }
}

fn one_named<'a>(calls: &'a [Call], command: &str, name: &str) -> &'a Call {
    let found: Vec<&Call> = calls.iter().filter(|c| c.is(command) && c.value("-n").as_deref() == Some(name)).collect();
    assert_eq!(found.len(), 1, "{command} -n {name}: {found:#?}");
    found[0]
}

#[test]
fn the_upload_is_done_once_per_sha256_and_its_sas_never_printed() {
    let az = FakeAz::new();
    let out = az.run(DEPLOY, &[], &env());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout) + &text(&out.stderr);
    let copies = az.azcopies();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let sas = &copies[0][2];
    assert!(sas.starts_with("https://md-fake.") && sas.contains("sig="), "azcopy got the granted SAS: {sas}");
    assert!(!said.contains("sig="), "the write SAS is a credential: never printed\n{said}");
    let calls = az.calls();
    let sha = sha_of(&az.vhd());
    let name = format!("hainit-debian12-{}", &sha[..12]);
    let state = az.state();
    assert!(state["resources"][format!("image|g=hainit-images,n={name}")].is_object(), "the image exists");
    assert!(state["resources"][format!("disk|g=hainit-images,n={name}-upload")].is_null(), "the upload disk is gone");
    assert!(position(&calls, "disk revoke-access") < position(&calls, "image create"));

    // Again with the same VHD: the image is reused, nothing is uploaded.
    let before = az.calls().len();
    let out = az.run(DEPLOY, &[], &env());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("image {name}: exists with this VHD's sha256, reused")));
    let again = &az.calls()[before..];
    assert!(!again.iter().any(|c| c.is("disk create") && c.has("--upload-type") || c.is("image create")), "{again:#?}");
    assert_eq!(az.azcopies().len(), 1);

    // A rebuilt VHD (another sha256) is another image; the VMs that exist keep theirs.
    az.make_vhd(&az.vhd(), 2);
    let sha2 = sha_of(&az.vhd());
    assert_ne!(sha, sha2);
    let out = az.run(DEPLOY, &[], &env());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name2 = format!("hainit-debian12-{}", &sha2[..12]);
    let state = az.state();
    assert!(state["resources"][format!("image|g=hainit-images,n={name2}")].is_object());
    assert!(state["resources"][format!("image|g=hainit-images,n={name}")].is_object(), "the old image stays");
    assert_eq!(az.azcopies().len(), 2);
}

#[test]
fn an_interrupted_upload_closes_its_sas_and_the_next_run_starts_over() {
    let az = FakeAz::new();
    let mut failing = env();
    failing.push(("FAKE_AZCOPY_FAIL", "1"));
    let out = az.run(DEPLOY, &[], &failing);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("azcopy could not upload"), "{}", text(&out.stderr));
    let calls = az.calls();
    assert!(calls.last().unwrap().is("disk revoke-access"), "the SAS is revoked at once: {:#?}", calls.last());
    assert!(!calls.iter().any(|c| c.is("vm create") || c.is("image create")));
    let out = az.run(DEPLOY, &[], &env());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("left by an interrupted upload"), "{}", text(&out.stderr));
    let calls = az.calls();
    let deletes = calls.iter().filter(|c| c.is("disk delete")).count();
    assert_eq!(deletes, 2, "the leftover and, after the image, the new upload disk");
}

#[test]
fn an_image_azure_would_refuse_is_bad_input() {
    let az = FakeAz::new();
    let dir = tempfile::tempdir().unwrap();
    // Dynamic (not fixed), a size that is not a whole number of MiB, no .sha256 beside it.
    let dynamic = dir.path().join("dynamic.vhd");
    let raw = dir.path().join("x.raw");
    std::fs::write(&raw, vec![0u8; 4 << 20]).unwrap();
    let q = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic"])
        .arg(&raw)
        .arg(&dynamic)
        .status();
    assert!(q.unwrap().success());
    std::fs::write(dynamic.with_extension("vhd.sha256"), format!("{}  dynamic.vhd\n", "0".repeat(64))).unwrap();
    let odd = dir.path().join("odd.vhd");
    std::fs::write(&raw, vec![0u8; (4 << 20) + 4096]).unwrap();
    let q = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on"])
        .arg(&raw)
        .arg(&odd)
        .status();
    assert!(q.unwrap().success());
    std::fs::write(odd.with_extension("vhd.sha256"), format!("{}  odd.vhd\n", "0".repeat(64))).unwrap();
    let unsummed = dir.path().join("unsummed.vhd");
    std::fs::copy(az.vhd(), &unsummed).unwrap();
    for (vhd, needle) in [
        (&dynamic, "not a fixed-size VHD"),
        (&odd, "is not a whole number of MiB"),
        (&unsummed, "unsummed.vhd.sha256 not found"),
    ] {
        let out = az.run(DEPLOY, &["--image-vhd", vhd.to_str().unwrap()], &env());
        assert_eq!(out.status.code(), Some(2), "{vhd:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(needle), "{needle}: {}", text(&out.stderr));
        assert!(!az.calls().iter().any(|c| c.is("disk create") || c.is("vm create")), "{vhd:?} got uploaded");
    }
    // A real run needs azcopy.
    std::fs::remove_file(az.dir.path().join("bin/azcopy")).unwrap();
    let out = az.run(DEPLOY, &[], &env());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("azcopy is needed"), "{}", text(&out.stderr));
}

#[test]
fn a_marketplace_derived_image_never_deploys_without_its_plan() {
    const PLAN: &str = "resf:rockylinux-x86_64:9-base";
    // A Marketplace URN with a plan, and a managed image built from one (the Rocky 9 template tags
    // it hainit-plan).
    let urn = "resf:rockylinux-x86_64:9-base:latest";
    let az = FakeAz::new();
    let out = az.run(DEPLOY, &["--image", urn], &env());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("pass --image-plan {PLAN}")) && err.contains("VMMarketplaceInvalidInput"), "{err}");
    assert!(az.calls().iter().all(|c| !c.mutates()), "refused before anything was created");

    let az = FakeAz::new();
    let mut resources = serde_json::Map::new();
    resources.insert(
        "image|g=hainit-images,n=hainit-rocky9".into(),
        serde_json::json!({"name": "hainit-rocky9", "args": {"--tags": ["project=hainit", format!("hainit-plan={PLAN}")]}}),
    );
    az.set_state(&serde_json::json!({"resources": resources, "roles": {}, "assignments": [], "role_failures": 0}));
    let out = az.run(DEPLOY, &["--image", "hainit-rocky9"], &env());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("pass --image-plan {PLAN}")), "{}", text(&out.stderr));
    assert!(az.calls().iter().all(|c| !c.mutates()));

    // With the plan, both deploy and every VM carries it; no upload of the Debian image.
    let out = az.run(DEPLOY, &["--image", "hainit-rocky9", "--image-plan", PLAN], &env());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = az.calls();
    assert!(!calls.iter().any(|c| c.is("disk grant-access")) && az.azcopies().is_empty());
    for vm in calls.iter().filter(|c| c.is("vm create")) {
        assert_eq!(vm.value("--image"), Some(image_id("hainit-rocky9")));
        let plan = [vm.value("--plan-publisher"), vm.value("--plan-product"), vm.value("--plan-name")];
        assert_eq!(plan.map(|p| p.unwrap()).join(":"), PLAN);
        assert!(!vm.has("--security-type"), "a Marketplace-derived image keeps Azure's default");
    }
    // An image without a plan needs none.
    let az = FakeAz::new();
    let out = az.run(DEPLOY, &["--dry-run", "--image", "Debian:debian-12:12-gen2:latest"], &env());
    assert!(out.status.success(), "{}", text(&out.stderr));
}
