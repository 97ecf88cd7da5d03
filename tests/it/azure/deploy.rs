//! scripts/deploy-azure.sh against the fake `az`: what it would create (--dry-run) and what it
//! does (a real run against the fake), checked against hainit's own defaults and parsers.

use std::path::Path;

use hainit::config::{Config, DatabaseConfig, DbConfig, StonithMode};
use hainit::inventory::{Inventory, Overrides, Role};
use hainit::platform::OsId;

use super::fake::{printed_calls, text, Call, FakeAz};
use crate::common::instance_doc;

const SCRIPT: &str = "scripts/deploy-azure.sh";
const SECRET: &str = "azure-test-secret-0123456789abcdefghijklmnop";

fn with_secret() -> [(&'static str, &'static str); 1] {
    [("HAINIT_SECRET", SECRET)]
}

fn one<'a>(calls: &'a [Call], command: &str, name: &str) -> &'a Call {
    let found: Vec<&Call> = calls.iter().filter(|c| c.is(command) && c.value("-n").as_deref() == Some(name)).collect();
    assert_eq!(found.len(), 1, "{command} -n {name}: {} calls in {:#?}", found.len(), calls);
    found[0]
}

fn vm_creates<'a>(calls: &'a [Call], role: &str) -> Vec<&'a Call> {
    let tag = format!("hainit-role={role}");
    calls.iter().filter(|c| c.is("vm create") && c.values("--tags").contains(&tag)).collect()
}

/// The tags of a `vm create` as IMDS would serve them, resolved by hainit itself.
fn resolve(create: &Call, ip: &str) -> Inventory {
    let tags: Vec<(String, String)> = create
        .values("--tags")
        .iter()
        .map(|t| {
            let (k, v) = t.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let host = create.value("--computer-name").unwrap();
    let doc = hainit::imds::InstanceDoc::from_json(&instance_doc(&host, ip, &tag_refs)).unwrap();
    Inventory::resolve(&doc, &Config::default(), &Overrides::default(), OsId::El9).unwrap()
}

fn assert_no_secret_in_argv(calls: &[Call], secret: &str) {
    for c in calls {
        for a in &c.argv {
            assert!(!a.contains(secret), "the secret is in the argv of az {}", c.command());
        }
    }
}

#[test]
fn dry_run_prints_the_how_to_topology_with_hainit_contracts() {
    let az = FakeAz::new();
    let out = az.run(SCRIPT, &["--dry-run"], &with_secret());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = printed_calls(&text(&out.stdout));
    assert!(az.calls().iter().all(|c| !c.mutates()), "a dry run changed something: {:#?}", az.calls());
    assert!(az.calls().iter().any(|c| c.is("group show")), "the dry run looked nothing up");
    assert_no_secret_in_argv(&printed, SECRET);
    assert_no_secret_in_argv(&az.calls(), SECRET);

    // The internal LB: frontend = VIP, TCP probe on hainit's probe port, a rule for the DB port.
    let db = DbConfig::default();
    let ilb = printed.iter().find(|c| c.is("network lb create") && c.has("--private-ip-address")).unwrap();
    let ilb_name = ilb.value("-n").unwrap();
    assert_eq!(ilb.value("--private-ip-address").as_deref(), Some(crate::common::VIP));
    let probe =
        printed.iter().find(|c| c.is("network lb probe create") && c.value("--lb-name") == Some(ilb_name.clone()));
    let probe = probe.expect("an ILB probe");
    assert_eq!(probe.value("--protocol").as_deref(), Some("Tcp"));
    assert_eq!(probe.value("--port"), Some(db.probe_port.to_string()), "ILB probe port != hainit's db.probe_port");
    assert_eq!(probe.value("--interval").as_deref(), Some("5"));
    let rule =
        printed.iter().find(|c| c.is("network lb rule create") && c.value("--lb-name") == Some(ilb_name.clone()));
    let rule = rule.expect("an ILB rule");
    let port = DatabaseConfig::default().port.to_string();
    assert_eq!(rule.value("--frontend-port"), Some(port.clone()));
    assert_eq!(rule.value("--backend-port"), Some(port.clone()));
    assert_eq!(rule.value("--probe-name"), probe.value("-n"));
    assert_eq!(rule.value("--floating-ip").as_deref(), Some("false"));

    // The public LB: port 80, HTTP probe on /healthz.
    let plb_probe =
        printed.iter().find(|c| c.is("network lb probe create") && c.value("--protocol").as_deref() == Some("Http"));
    let plb_probe = plb_probe.expect("a public LB probe");
    assert_eq!(
        (plb_probe.value("--port").as_deref(), plb_probe.value("--path").as_deref()),
        (Some("80"), Some("/healthz"))
    );
    let plb_rule =
        printed.iter().find(|c| c.is("network lb rule create") && c.value("--probe-name") == plb_probe.value("-n"));
    assert_eq!(plb_rule.unwrap().value("--frontend-port").as_deref(), Some("80"));

    // Outbound for fencing: a NAT gateway on both subnets; the DB grant's subnet is hainit's default.
    for subnet in printed.iter().filter(|c| c.is("network vnet subnet create")) {
        assert_eq!(subnet.value("--nat-gateway").as_deref(), Some("hainit-nat"), "{subnet:?}");
    }
    assert_eq!(
        one(&printed, "network vnet subnet create", "web").value("--address-prefixes"),
        Some(db.web_subnet.clone())
    );
    let mysql_rule = one(&printed, "network nsg rule create", "allow-mysql-from-web");
    assert_eq!(mysql_rule.value("--source-address-prefixes"), Some(db.web_subnet.clone()));
    assert_eq!(mysql_rule.values("--destination-port-ranges"), [port]);

    // Two db VMs: data disk at LUN 0 (the only disk, attached at creation), identity, tags that
    // hainit resolves into the DB pair; their NICs carry the addresses of hainit-peers.
    let dbs = vm_creates(&printed, "db");
    assert_eq!(dbs.len(), 2);
    for vm in &dbs {
        let name = vm.value("-n").unwrap();
        assert_eq!(vm.values("--attach-data-disks"), [format!("{name}-data")], "LUN 0 of {name}");
        assert!(!vm.has("--data-disk-sizes-gb"), "{name} would get a second data disk");
        // The identity gets the fence role in the deployment that creates the VM: before first boot.
        assert_eq!(vm.values("--assign-identity"), ["[system]"]);
        assert_eq!(vm.value("--role").as_deref(), Some("hainit-fence-hainit-wp"));
        assert!(vm.value("--scope").unwrap().ends_with("/resourceGroups/hainit-wp"), "{vm:?}");
        assert!(vm.value("--custom-data").unwrap().starts_with('@'));
        let nic = one(&printed, "network nic create", &vm.value("--nics").unwrap());
        assert_eq!(nic.value("--lb-name"), Some(ilb_name.clone()));
        let ip = nic.value("--private-ip-address").unwrap();
        let inv = resolve(vm, &ip);
        assert_eq!(inv.role, Role::Db);
        assert_eq!(inv.node.name, name);
        assert_eq!(inv.cluster, "wpcluster");
        assert_eq!(inv.peers.len(), 2);
        assert_eq!(inv.vip.map(|v| v.to_string()).as_deref(), Some(crate::common::VIP));
        assert!(printed.iter().any(|c| c.is("disk create") && c.value("-n") == Some(format!("{name}-data"))));
    }
    assert!(!printed.iter().any(|c| c.is("role assignment create")), "the roles come with the VMs");

    // The fencing role: exactly what fence_azure_arm needs, assignable in the resource group.
    let role = printed.iter().find(|c| c.is("role definition create")).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&role.value("--role-definition").unwrap()).unwrap();
    assert_eq!(
        spec["Actions"],
        serde_json::json!([
            "Microsoft.Compute/*/read",
            "Microsoft.Compute/virtualMachines/powerOff/action",
            "Microsoft.Compute/virtualMachines/start/action"
        ])
    );
    assert!(spec["AssignableScopes"][0].as_str().unwrap().ends_with("/resourceGroups/hainit-wp"));

    // Two web VMs behind the public LB with the web tags.
    let webs = vm_creates(&printed, "web");
    assert_eq!(webs.len(), 2);
    for vm in webs {
        let nic = one(&printed, "network nic create", &vm.value("--nics").unwrap());
        assert_eq!(nic.value("--lb-name").as_deref(), Some("hainit-web-lb"));
        let inv = resolve(vm, &nic.value("--private-ip-address").unwrap());
        assert_eq!(inv.role, Role::Web);
        assert!(!vm.has("--assign-identity") && !vm.has("--attach-data-disks") && !vm.has("--role"));
    }
    // Availability sets by default, one per tier.
    assert_eq!(printed.iter().filter(|c| c.is("vm availability-set create")).count(), 2);

    assert_the_share(&printed, "Premium_LRS");
}

/// The web tier's uploads: a premium Azure Files NFS share reached only from the web subnet (its
/// service endpoint and the account's network rule), no account key, and every web VM tagged with
/// it as hainit's web role reads the tag.
fn assert_the_share(calls: &[Call], sku: &str) {
    let endpoint = calls
        .iter()
        .find(|c| c.is("network vnet subnet update") && c.has("--service-endpoints"))
        .expect("the web subnet's Microsoft.Storage service endpoint");
    assert_eq!(endpoint.value("-n").as_deref(), Some("web"));
    assert_eq!(endpoint.values("--service-endpoints"), ["Microsoft.Storage"]);
    let accounts: Vec<&Call> = calls.iter().filter(|c| c.is("storage account create")).collect();
    assert_eq!(accounts.len(), 1, "{accounts:#?}");
    let account = accounts[0];
    let name = account.value("-n").unwrap();
    for (flag, want) in [
        ("--kind", "FileStorage"),
        ("--sku", sku),
        ("--https-only", "false"),
        ("--allow-shared-key-access", "false"),
        ("--default-action", "Deny"),
    ] {
        assert_eq!(account.value(flag).as_deref(), Some(want), "storage account {flag}");
    }
    let rule = calls.iter().find(|c| c.is("storage account network-rule add")).expect("the account's network rule");
    assert_eq!(rule.value("--account-name"), Some(name.clone()));
    assert_eq!(
        (rule.value("--vnet-name").as_deref(), rule.value("--subnet").as_deref()),
        (Some("hainit-vnet"), Some("web"))
    );
    let share = calls.iter().find(|c| c.is("storage share-rm create")).expect("the NFS share");
    assert_eq!(share.value("--storage-account"), Some(name.clone()));
    assert_eq!(share.value("--enabled-protocols").as_deref(), Some("NFS"));
    assert_eq!(share.value("--root-squash").as_deref(), Some("NoRootSquash"), "hainit chowns the share's root");
    assert!(share.value("--quota").unwrap().parse::<u32>().unwrap() >= 100, "premium shares start at 100 GiB");
    let webs = vm_creates(calls, "web");
    assert!(!webs.is_empty());
    for vm in webs {
        let nic = one(calls, "network nic create", &vm.value("--nics").unwrap());
        let inv = resolve(vm, &nic.value("--private-ip-address").unwrap());
        let parsed = hainit::roles::web::share::share_of(&inv).unwrap();
        let host = format!("{name}.file.core.windows.net");
        let path = format!("/{name}/{}", share.value("-n").unwrap());
        assert_eq!(parsed, hainit::roles::web::share::Share::Nfs { host, path }, "{}", vm.value("-n").unwrap());
    }
}

/// One real run of the default deployment against a fresh fake (shared: each run costs ~80 fake
/// az calls), with the secret in an existing secret file.
struct Deployed {
    state: serde_json::Value,
    calls: Vec<Call>,
    output: String,
    secret_file_after: String,
}

fn deployed() -> &'static Deployed {
    static ONCE: std::sync::OnceLock<Deployed> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let az = FakeAz::new();
        let file = az.home().join(".config/hainit/hainit-wp.secret");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("{SECRET}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = az.run(SCRIPT, &[], &[("HAINIT_RETRY_DELAY", "0")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        Deployed {
            state: az.state(),
            calls: az.calls(),
            output: text(&out.stdout) + &text(&out.stderr),
            secret_file_after: std::fs::read_to_string(&file).unwrap(),
        }
    })
}

#[test]
fn a_real_run_passes_custom_data_in_a_0600_file_and_a_second_run_changes_nothing() {
    let d = deployed();
    let calls = &d.calls;
    assert_no_secret_in_argv(calls, SECRET);
    assert!(!d.output.contains(SECRET));
    assert_eq!(d.secret_file_after, format!("{SECRET}\n"), "an existing secret file is used as it is");

    let creates: Vec<&Call> = calls.iter().filter(|c| c.is("vm create")).collect();
    assert_eq!(creates.len(), 4);
    for vm in &creates {
        let path = vm.value("--custom-data").unwrap();
        let path = path.strip_prefix('@').unwrap();
        let (mode, content) = vm.files.get(path).unwrap_or_else(|| panic!("custom-data {path} was not readable"));
        assert_eq!(mode, "600");
        assert!(!Path::new(path).exists(), "{path} outlived the run");
        let role = if vm.values("--tags").contains(&"hainit-role=db".to_string()) { "db" } else { "web" };
        let config = super::cloud_init::hainit_config_of(content);
        if role == "db" {
            assert_eq!(content.matches(SECRET).count(), 1, "the secret belongs in hainit.yaml only");
            assert_eq!(config.secret.as_deref(), Some(SECRET));
        } else {
            super::cloud_init::assert_web_custom_data_holds_no_master_secret(content, SECRET);
            assert_eq!(config.web_secrets, serde_json::from_str(&super::cloud_init::web_secrets_of(SECRET)).unwrap());
        }
        assert_eq!(config.role, Some(if role == "db" { Role::Db } else { Role::Web }));
        assert_eq!(config.db.probe_port, DbConfig::default().probe_port);
        assert_eq!(config.db.web_subnet, DbConfig::default().web_subnet);
        if role == "web" {
            assert_eq!(config.web.site_url.as_deref(), Some("http://203.0.113.10"));
        }
        super::cloud_init::assert_schema_valid(content);
    }

    // Each db VM's identity got the fencing role when it was created, at the group.
    let state = &d.state;
    let assignments = state["assignments"].as_array().unwrap();
    assert_eq!(assignments.len(), 2, "{assignments:?}");
    for name in ["db-a", "db-b"] {
        let vm = &state["resources"][format!("vm|g=hainit-wp,n={name}")];
        assert_eq!(vm["lun0"], format!("{name}-data"));
        assert!(assignments.iter().any(|a| a["principal"] == vm["principal"] && a["role"] == "hainit-fence-hainit-wp"));
    }

    let az = FakeAz::new();
    az.set_state(state);
    let again = az.run(SCRIPT, &[], &with_secret());
    assert!(again.status.success(), "{}", text(&again.stderr));
    let changes: Vec<String> = az.calls().iter().filter(|c| c.mutates()).map(|c| c.argv.join(" ")).collect();
    assert!(changes.is_empty(), "the second run changed: {changes:#?}");
    let dry = az.run(SCRIPT, &["--dry-run"], &with_secret());
    assert_eq!(text(&dry.stdout), "", "a dry run of a deployed stack prints nothing to do");
}

#[test]
fn flags_flow_into_the_probe_nsg_and_custom_data_and_a_new_secret_is_kept() {
    let az = FakeAz::new();
    let args = [
        "--probe-port",
        "61000",
        "--web-subnet",
        "10.0.4.0/24",
        "--web-ips",
        "10.0.4.4 10.0.4.5",
        "--zones",
        "1,2",
        "--image",
        "Debian:debian-12:12-gen2:latest",
        "--hainit-url",
        "https://example.org/hainit",
        "--hainit-sha256",
        &"ab".repeat(32),
    ];
    // No HAINIT_SECRET and no secret file: a new secret, kept in a 0600 file.
    let out = az.run(SCRIPT, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = az.home().join(".config/hainit/hainit-wp.secret");
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "32 random bytes in hex");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let calls = az.calls();
    assert_no_secret_in_argv(&calls, &secret);
    let probe = one(&calls, "network lb probe create", "db-probe");
    assert_eq!(probe.value("--port").as_deref(), Some("61000"));
    assert_eq!(one(&calls, "network nsg rule create", "allow-lb-probe").values("--destination-port-ranges"), ["61000"]);
    assert_eq!(
        one(&calls, "network nsg rule create", "allow-mysql-from-web").value("--source-address-prefixes").as_deref(),
        Some("10.0.4.0/24")
    );
    // Zones instead of availability sets: round robin, disks in their VM's zone; a zone-redundant share.
    assert!(!calls.iter().any(|c| c.is("vm availability-set create")));
    assert_the_share(&calls, "Premium_ZRS");
    for (name, zone) in [("db-a", "1"), ("db-b", "2"), ("web-1", "1"), ("web-2", "2")] {
        let vm = one(&calls, "vm create", name);
        assert_eq!(vm.value("--zone").as_deref(), Some(zone), "{name}");
        assert_eq!(vm.value("--image").as_deref(), Some("Debian:debian-12:12-gen2:latest"));
        let content = &vm.files.values().next().unwrap().1;
        let config = super::cloud_init::hainit_config_of(content);
        if name.starts_with("web") {
            super::cloud_init::assert_web_custom_data_holds_no_master_secret(content, &secret);
        } else {
            assert_eq!(config.secret.as_deref(), Some(secret.as_str()));
        }
        if name.starts_with("db") {
            assert_eq!(config.db.probe_port, 61000);
            assert_eq!(config.db.web_subnet, "10.0.4.0/24");
            assert_eq!(one(&calls, "disk create", &format!("{name}-data")).value("--zone").as_deref(), Some(zone));
        }
        let fetch = super::cloud_init::file_of(content, "/etc/hainit/fetch.env");
        assert_eq!(fetch, format!("url=https://example.org/hainit\nsha256={}\n", "ab".repeat(32)));
    }
}

/// The db VMs' custom-data configs of a run, parsed by hainit.
fn db_configs(calls: &[Call]) -> Vec<(String, Config)> {
    vm_creates(calls, "db")
        .into_iter()
        .map(|vm| {
            let path = vm.value("--custom-data").unwrap();
            let (_, content) = &vm.files[path.strip_prefix('@').unwrap()];
            super::cloud_init::assert_schema_valid(content);
            (vm.value("-n").unwrap(), super::cloud_init::hainit_config_of(content))
        })
        .collect()
}

/// --stonith sbd: one shared disk, at LUN 1 of both db VMs (after the data disk at LUN 0), and
/// hainit configured to fence with it; no identity, no fence role. A second run changes nothing.
#[test]
fn sbd_fencing_shares_one_disk_at_lun_1_and_needs_no_identity_or_role() {
    let az = FakeAz::new();
    let out = az.run(SCRIPT, &["--stonith", "sbd"], &with_secret());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = az.calls();
    let sbd = one(&calls, "disk create", "wpcluster-sbd");
    assert_eq!(sbd.value("--max-shares").as_deref(), Some("2"));
    assert_eq!(sbd.value("--size-gb").as_deref(), Some("4"));
    assert_eq!(sbd.value("--sku").as_deref(), Some("Premium_LRS"));
    assert!(!sbd.has("--zone"));
    let disks = calls.iter().filter(|c| c.is("disk create") && c.value("-g").as_deref() == Some("hainit-wp"));
    assert_eq!(disks.count(), 3, "two data disks and one SBD disk");
    for c in &calls {
        assert!(!c.command().starts_with("role "), "no fence role with SBD: az {}", c.argv.join(" "));
    }
    for (name, config) in db_configs(&calls) {
        let vm = one(&calls, "vm create", &name);
        assert_eq!(vm.values("--attach-data-disks"), [format!("{name}-data"), "wpcluster-sbd".to_string()]);
        assert_eq!(vm.values("--data-disk-caching"), ["None"]);
        assert!(!vm.has("--assign-identity"), "{name}");
        assert_eq!(config.db.stonith, StonithMode::Sbd, "{name}");
        assert_eq!(config.db.sbd_device.as_deref(), Some("/dev/disk/azure/scsi1/lun1"), "{name}");
        let state = az.state();
        let r = &state["resources"][format!("vm|g=hainit-wp,n={name}")];
        assert_eq!((r["lun0"].as_str(), r["lun1"].as_str()), (Some(&*format!("{name}-data")), Some("wpcluster-sbd")));
    }

    let again = FakeAz::new();
    again.set_state(&az.state());
    let out = again.run(SCRIPT, &["--stonith", "sbd"], &with_secret());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let changes: Vec<String> = again.calls().iter().filter(|c| c.mutates()).map(|c| c.argv.join(" ")).collect();
    assert!(changes.is_empty(), "the second run changed: {changes:#?}");

    // The default keeps fence_azure_arm: hainit's stonith auto, no SBD device.
    for (name, config) in db_configs(&deployed().calls) {
        assert_eq!((config.db.stonith, config.db.sbd_device), (StonithMode::Auto, None), "{name}");
    }
}

/// With zones the shared disk must be zone-redundant to reach VMs in two zones.
#[test]
fn sbd_across_zones_uses_a_zone_redundant_disk() {
    let az = FakeAz::new();
    let out = az.run(SCRIPT, &["--dry-run", "--stonith", "sbd", "--zones", "1 2"], &with_secret());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = printed_calls(&text(&out.stdout));
    let sbd = one(&printed, "disk create", "wpcluster-sbd");
    assert_eq!(sbd.value("--sku").as_deref(), Some("Premium_ZRS"));
    assert!(!sbd.has("--zone"));
}

/// What is already there and would break SBD stops the run: a disk of that name that is not
/// shared, a foreign disk at LUN 1. An empty LUN 1 gets the SBD disk attached.
#[test]
fn sbd_drift_stops_the_run() {
    let az = FakeAz::new();
    assert!(az.run(SCRIPT, &["--stonith", "sbd"], &with_secret()).status.success());
    let deployed = az.state();

    let az = FakeAz::new();
    let mut state = deployed.clone();
    state["resources"]["disk|g=hainit-wp,n=wpcluster-sbd"]["args"].as_object_mut().unwrap().remove("--max-shares");
    az.set_state(&state);
    let out = az.run(SCRIPT, &["--stonith", "sbd"], &with_secret());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("disk wpcluster-sbd exists but is not a shared disk"), "{}", text(&out.stderr));
    assert!(az.calls().iter().all(|c| !c.mutates()));

    let az = FakeAz::new();
    let mut state = deployed.clone();
    state["resources"]["vm|g=hainit-wp,n=db-a"]["lun1"] = "".into();
    state["resources"]["vm|g=hainit-wp,n=db-b"]["lun1"] = "someone-elses-disk".into();
    az.set_state(&state);
    let out = az.run(SCRIPT, &["--stonith", "sbd"], &with_secret());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("db-b has disk someone-elses-disk at LUN 1") && err.contains("as its SBD disk"), "{err}");
    let attach = az.calls().into_iter().find(|c| c.is("vm disk attach")).expect("db-a's SBD disk attached");
    assert_eq!(attach.value("--vm-name").as_deref(), Some("db-a"));
    assert_eq!(
        (attach.value("--name").as_deref(), attach.value("--lun").as_deref()),
        (Some("wpcluster-sbd"), Some("1"))
    );
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--db-names", "db-a db-b db-c", "--db-ips", "10.0.1.4 10.0.1.5 10.0.1.6"], &[], "exactly two"),
        (&["--vip", "10.0.2.10"], &[], "10.0.2.10"),
        (&["--db-ips", "10.0.1.4 10.0.1.2"], &[], "10.0.1.2"),
        (&["--probe-port", "3306"], &[], "--probe-port"),
        (&["--hainit-sha256", "abc"], &[], "--hainit-sha256 without --hainit-url"),
        (&["--hainit-url", "https://x/hainit"], &[], "--hainit-sha256"),
        (&["--zones", "1 4"], &[], "zones"),
        (&["--web-names", "web-1 Web_2"], &[], "Web_2"),
        (&["--db-subnet", "10.0.2.0/24", "--db-ips", "10.0.2.4 10.0.2.5", "--vip", "10.0.2.10"], &[], "overlap"),
        (&["--bogus", "1"], &[], "--bogus"),
        (&["--stonith", "fence_azure_arm"], &[], "--stonith 'fence_azure_arm': azure-arm or sbd"),
        (&["--share-account", "Hainit_Share"], &[], "--share-account 'Hainit_Share'"),
        (&["--share-gb", "50"], &[], "--share-gb '50'"),
        (&[], &[("HAINIT_SECRET", "short")], "at least 32"),
        (&[], &[("HAINIT_SECRET", "has a \"quote\" and is long enough to pass")], "may contain only"),
    ];
    for (args, env, needle) in cases {
        let az = FakeAz::new();
        let mut all_env = vec![("HAINIT_SECRET", SECRET)];
        all_env.extend_from_slice(env);
        let out = az.run(SCRIPT, args, &all_env);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(needle), "{args:?}: stderr lacks {needle:?}: {}", text(&out.stderr));
        assert!(az.calls().iter().all(|c| !c.mutates()), "{args:?} changed something");
    }
}

/// A db VM made without an identity or the fence role (by hand, or before this script assigned it
/// at creation) gets both; the assignment is retried while a new identity propagates.
#[test]
fn an_existing_db_vm_without_the_fence_role_gets_it() {
    let az = FakeAz::new();
    let mut state = deployed().state.clone();
    let vm = &mut state["resources"]["vm|g=hainit-wp,n=db-b"];
    let principal = vm["principal"].clone();
    vm.as_object_mut().unwrap().remove("principal");
    state["assignments"].as_array_mut().unwrap().retain(|a| a["principal"] != principal);
    az.set_state(&state);
    let env = [("HAINIT_SECRET", SECRET), ("HAINIT_RETRY_DELAY", "0"), ("FAKE_AZ_FAIL_ROLE_ASSIGNMENTS", "2")];
    let out = az.run(SCRIPT, &[], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let changes: Vec<Call> = az.calls().into_iter().filter(|c| c.mutates()).collect();
    let commands: Vec<String> = changes.iter().map(Call::command).collect();
    assert_eq!(
        commands,
        ["vm identity assign", "role assignment create", "role assignment create", "role assignment create"],
        "two propagation failures, then the assignment"
    );
    assert_eq!(changes[0].value("-n").as_deref(), Some("db-b"));
    let after = az.state();
    let assigned = after["assignments"].as_array().unwrap();
    assert!(assigned.iter().any(|a| a["principal"] == principal && a["role"] == "hainit-fence-hainit-wp"));
}

#[test]
fn drift_that_would_break_hainit_stops_the_run() {
    // The ILB already probes another port: say so, do not guess.
    let az = FakeAz::new();
    let mut state = deployed().state.clone();
    state["resources"]["network lb probe|g=hainit-wp,n=db-probe,parent=hainit-db-lb"]["args"]["--port"] =
        serde_json::json!(["61000"]);
    az.set_state(&state);
    let out = az.run(SCRIPT, &[], &with_secret());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("61000") && text(&out.stderr).contains("62500"), "{}", text(&out.stderr));
    assert!(az.calls().iter().all(|c| !c.mutates()));

    // LUN 0 of a db VM: empty gets the data disk attached; a foreign disk stops the run.
    let az = FakeAz::new();
    let mut state = deployed().state.clone();
    state["resources"]["vm|g=hainit-wp,n=db-a"]["lun0"] = "".into();
    state["resources"]["vm|g=hainit-wp,n=db-b"]["lun0"] = "someone-elses-disk".into();
    az.set_state(&state);
    let out = az.run(SCRIPT, &[], &with_secret());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("someone-elses-disk"), "{}", text(&out.stderr));
    let attach = az.calls().into_iter().find(|c| c.is("vm disk attach")).expect("db-a's disk attached");
    assert_eq!(attach.value("--vm-name").as_deref(), Some("db-a"));
    assert_eq!((attach.value("--name").as_deref(), attach.value("--lun").as_deref()), (Some("db-a-data"), Some("0")));
}

/// The share's drift: an account that cannot serve NFS stops the run; a web VM deployed before the
/// share gets its tag; a missing network rule is added.
#[test]
fn share_drift_is_fixed_or_stops_the_run() {
    let account_key = |state: &serde_json::Value| {
        state["resources"].as_object().unwrap().keys().find(|k| k.starts_with("storage account|")).unwrap().clone()
    };
    let az = FakeAz::new();
    let mut state = deployed().state.clone();
    let key = account_key(&state);
    state["resources"][&key]["args"]["--https-only"] = serde_json::json!(["true"]);
    az.set_state(&state);
    let out = az.run(SCRIPT, &[], &with_secret());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("requires secure transfer"), "{}", text(&out.stderr));

    let az = FakeAz::new();
    let mut state = deployed().state.clone();
    state["resources"]["vm|g=hainit-wp,n=web-2"]["tags"].as_object_mut().unwrap().remove("hainit-share");
    state["resources"][&key]["vnet_rules"] = serde_json::json!([]);
    az.set_state(&state);
    let out = az.run(SCRIPT, &[], &with_secret());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let changes: Vec<Call> = az.calls().into_iter().filter(|c| c.mutates()).collect();
    let commands: Vec<String> = changes.iter().map(|c| c.command()).collect();
    assert_eq!(commands, ["storage account network-rule add", "vm update"], "{changes:#?}");
    assert_eq!(changes[1].value("-n").as_deref(), Some("web-2"));
    let tag = changes[1].value("--set").unwrap();
    let web1 = &deployed().state["resources"]["vm|g=hainit-wp,n=web-1"]["tags"]["hainit-share"];
    assert_eq!(tag, format!("tags.hainit-share={}", web1.as_str().unwrap()));
}

#[test]
fn without_az_login_only_a_dry_run_proceeds() {
    let az = FakeAz::new();
    let env = [("HAINIT_SECRET", SECRET), ("FAKE_AZ_LOGGED_OUT", "1")];
    let out = az.run(SCRIPT, &[], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("az login"));
    let dry = az.run(SCRIPT, &["--dry-run"], &env);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert_eq!(printed_calls(&text(&dry.stdout)).iter().filter(|c| c.is("vm create")).count(), 4);
    assert!(az.calls().iter().all(|c| c.is("account show")), "offline: nothing but the login check");
}
