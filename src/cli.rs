//! The command line (README.md "Command line", docs/usage.md) and one `run_*` function per command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::{info, warn};

use crate::config::{Config, StonithMode};
use crate::engine::{self, Context, Options};
use crate::error::{Error, Result};
use crate::imds::{self, ImdsClient};
use crate::inventory::{Inventory, Overrides, Role};
use crate::platform::OsId;
use crate::roles;
use crate::secrets::{self, SharedSecret};
use crate::status::{last_run_record, StatusReport};
use crate::system::{Executor, HostSystem, Probe, Root};

#[derive(Debug, Parser)]
#[command(name = "hainit", version, about = "Converge this VM into its role of the HA WordPress stack")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// YAML config (default /etc/hainit/hainit.yaml under --root; may be absent)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Base URL of the instance metadata service
    #[arg(long, global = true, env = "HAINIT_IMDS_URL", value_name = "URL")]
    pub imds_url: Option<String>,
    /// Total seconds to keep retrying IMDS (default 60, or imds.deadline_secs)
    #[arg(long, global = true, value_name = "SECS")]
    pub imds_deadline: Option<u64>,
    /// Prefix for every file hainit reads or writes
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Override /etc/os-release detection: centos7, el8, el9, debian12
    #[arg(long, global = true, value_name = "ID")]
    pub os: Option<String>,
    /// Override the hainit-role tag: db or web
    #[arg(long, global = true, value_name = "ROLE", value_parser = parse_role)]
    pub role: Option<Role>,
    /// Allow destroying foreign contents of this data disk, named (db role; only while the peer
    /// holds current data, never DRBD's own)
    #[arg(long, global = true, value_name = "DEVICE", value_parser = parse_device, require_equals = true)]
    pub wipe_data_disk: Option<String>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Debug logging (commands run, IMDS attempts)
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Converge this node (the default when no command is given)
    Apply,
    /// Print the resolved inventory: role, node, cluster, peers, vip, leader, platform
    Discover {
        #[arg(long)]
        json: bool,
    },
    /// Print every step with its state and the commands and files it would run or write
    Plan {
        #[arg(long)]
        json: bool,
    },
    /// Write every file this node would get under DIR
    Render {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Health of this node's role (exit 1 when an item is FAIL)
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Print a tier's derived secrets (JSON, also YAML) for config `web_secrets`; runs anywhere,
    /// without IMDS (deploy-azure.sh runs it on the operator's machine)
    Secrets {
        /// The tier whose secrets to print
        #[arg(long, value_enum)]
        tier: Tier,
        /// File holding the master secret (`-` or /dev/stdin: read it from standard input)
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
    },
}

/// A tier that gets only its own secrets (the db tier holds the master secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tier {
    Web,
}

fn parse_role(s: &str) -> std::result::Result<Role, String> {
    s.parse()
}

fn parse_device(s: &str) -> std::result::Result<String, String> {
    if s.starts_with("/dev/") && !s.contains(char::is_whitespace) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a device path under /dev/"))
    }
}

/// What every command needs: validated inputs, before anything is touched.
struct Inputs {
    host: HostSystem,
    config: Config,
    inventory: Inventory,
    imds: ImdsClient,
}

fn gather(global: &GlobalArgs) -> Result<Inputs> {
    let host = HostSystem::new(Root::new(&global.root));
    let config = Config::load(global.config.as_deref(), |p| host.read_string(p))?;
    let os = match &global.os {
        Some(id) => id.parse()?,
        None => {
            let text = host.read_string("/etc/os-release")?.ok_or_else(|| {
                Error::input("cannot read /etc/os-release to detect the OS; pass --os centos7|el8|el9|debian12")
            })?;
            OsId::detect(&text)?
        }
    };
    let url = global.imds_url.clone().or_else(|| config.imds.url.clone()).unwrap_or(imds::DEFAULT_URL.to_string());
    let deadline = global.imds_deadline.map(Duration::from_secs).unwrap_or_else(|| config.imds_deadline());
    let imds = ImdsClient::new(&url, deadline);
    let doc = imds.fetch_instance()?;
    let inventory = Inventory::resolve(&doc, &config, &Overrides { role: global.role }, os)?;
    Ok(Inputs { host, config, inventory, imds })
}

pub fn run(cli: Cli) -> Result<()> {
    if let Some(Command::Secrets { tier, secret_file }) = &cli.command {
        return run_secrets(*tier, secret_file);
    }
    let inputs = gather(&cli.global)?;
    match cli.command.unwrap_or(Command::Apply) {
        Command::Discover { json } => run_discover(&inputs, json),
        Command::Status { json } => run_status(inputs, json),
        Command::Plan { json } => run_plan(&inputs, &cli.global, json),
        Command::Apply => run_apply(&inputs, &cli.global),
        Command::Render { out } => run_render(&inputs, &cli.global, out),
        Command::Secrets { .. } => Ok(()), // handled above, before IMDS
    }
}

/// `hainit secrets --tier web`: the web tier's values, derived from the master secret in `file`.
fn run_secrets(tier: Tier, file: &Path) -> Result<()> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Error::input(format!("--secret-file -: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Error::input(format!("--secret-file {}: {e}", file.display())))?
    };
    let master = SharedSecret::try_new(&text, &format!("--secret-file {}", file.display()))?;
    let role = match tier {
        Tier::Web => Role::Web,
    };
    println!("{}", secrets::tier_json(&master, &roles::tier_purposes(role)));
    Ok(())
}

fn run_discover(inputs: &Inputs, json: bool) -> Result<()> {
    let inv = &inputs.inventory;
    if json {
        println!("{}", serde_json::to_string_pretty(inv).map_err(|e| Error::step(e.to_string()))?);
        return Ok(());
    }
    let peers: Vec<String> = inv.peers.iter().map(|p| format!("{}={}", p.name, p.ip)).collect();
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("role      {}", inv.role);
    println!("node      {} ({})", inv.node.name, inv.node.ip);
    println!("cluster   {}", inv.cluster);
    println!("peers     {}", if peers.is_empty() { "-".into() } else { peers.join(", ") });
    println!("vip       {}", or_dash(inv.vip.map(|v| v.to_string())));
    println!("leader    {}", or_dash(inv.leader.clone()));
    if let Some(share) = &inv.share {
        println!("share     {share}");
    }
    println!("platform  {}", inv.platform);
    Ok(())
}

fn run_status(inputs: Inputs, json: bool) -> Result<()> {
    let platform = inputs.inventory.platform.platform();
    let items = roles::health(&inputs.inventory, platform, &inputs.config, &inputs.host);
    let report = StatusReport::collect(inputs.inventory, items, &inputs.host);
    if json {
        println!("{:#}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    report.verdict()
}

/// Probe what the steps depend on but IMDS knows (managed identity), then build the context.
fn with_context<T>(inputs: &Inputs, global: &GlobalArgs, f: impl FnOnce(&Context) -> Result<T>) -> Result<T> {
    let secrets = inputs.config.secrets(inputs.inventory.role, |p| inputs.host.read_string(p))?;
    if let Some(why) = inputs.config.tier_warning(inputs.inventory.role) {
        warn!("{why}");
    }
    let managed_identity = inputs.inventory.role == Role::Db
        && inputs.config.db.stonith == StonithMode::Auto
        && inputs.imds.has_managed_identity()?;
    let cx = Context {
        inv: &inputs.inventory,
        platform: inputs.inventory.platform.platform(),
        config: &inputs.config,
        secrets: &secrets,
        options: Options {
            wipe_data_disk: global.wipe_data_disk.clone().map(|d| &*Box::leak(d.into_boxed_str())),
            managed_identity,
        },
    };
    roles::validate(&cx, &inputs.host)?;
    f(&cx)
}

fn run_plan(inputs: &Inputs, global: &GlobalArgs, json: bool) -> Result<()> {
    with_context(inputs, global, |cx| {
        let plan = engine::plan(&roles::steps(cx), cx, &inputs.host)?;
        if json {
            println!("{:#}", plan.to_json());
        } else {
            print!("{}", plan.to_text());
        }
        Ok(())
    })
}

/// Serialises concurrent runs on one node.
pub const LOCK_PATH: &str = "/run/hainit.lock";

fn run_apply(inputs: &Inputs, global: &GlobalArgs) -> Result<()> {
    let _lock = inputs.host.lock(LOCK_PATH)?;
    with_context(inputs, global, |cx| {
        info!(role = %cx.inv.role, node = %cx.inv.node.name, platform = %cx.inv.platform, "converging");
        let result = engine::apply(&roles::steps(cx), cx, &inputs.host);
        if let Err(e) = inputs.host.write_file(&last_run_record(&result)) {
            warn!(error = %e, "could not record the run for `status`");
        }
        let outcomes = result?;
        let changed = outcomes.iter().filter(|(_, o)| *o != engine::Outcome::Converged).count();
        info!(steps = outcomes.len(), changed, "converged");
        Ok(())
    })
}

fn run_render(inputs: &Inputs, global: &GlobalArgs, out: PathBuf) -> Result<()> {
    with_context(inputs, global, |cx| {
        let target = HostSystem::without_chown(Root::new(&out));
        for path in engine::render(&roles::steps(cx), cx, &target)? {
            println!("{}{path}", out.display());
        }
        Ok(())
    })
}
