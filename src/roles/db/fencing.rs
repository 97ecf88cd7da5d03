//! The fence device this node's cluster gets (safety rule 4): SBD on a shared disk, or
//! fence_azure_arm with the VM's managed identity. The one place that decides it; the cluster
//! configuration, the DRBD resource file and `status` all ask here.

use super::sbd;
use crate::cib;
use crate::config::StonithMode;
use crate::engine::Context;
use crate::error::{Error, Result};

/// Whether the fence race is weighted (priority-fencing-delay) or random (pcmk_delay_max) is
/// the installed Pacemaker's to decide (cib::line).
#[derive(Debug, Clone)]
pub struct Stonith {
    pub agent: FenceAgent,
}

/// The fence device: Azure's API with the VM's managed identity, or SBD on a shared disk.
#[derive(Debug, Clone)]
pub enum FenceAgent {
    AzureArm {
        subscription_id: String,
        resource_group: String,
        /// `host:vm;host:vm` (pcmk_host_map).
        host_map: String,
    },
    Sbd {
        device: String,
        /// How long a poison pill takes to count as delivered (the header's msgwait), seconds.
        msgwait_secs: u32,
    },
}

impl Stonith {
    /// The fence device's resource id.
    pub fn id(&self) -> &'static str {
        match self.agent {
            FenceAgent::AzureArm { .. } => cib::FENCE_AZURE,
            FenceAgent::Sbd { .. } => cib::FENCE_SBD,
        }
    }
}

/// STONITH: SBD when configured; fence_azure_arm with the VM's managed identity by default; none
/// only when the config says `db.stonith: off` (safety rule 4: logged, `status` reports FAIL).
/// `auto` without an identity is refused by [`validate`] before any step runs; it is never
/// read as "off".
pub fn stonith(cx: &Context) -> Option<Stonith> {
    match cx.config.db.stonith {
        StonithMode::Off => None,
        StonithMode::Sbd => Some(Stonith {
            agent: FenceAgent::Sbd {
                device: cx.config.db.sbd_device.clone().unwrap_or_default(),
                msgwait_secs: sbd::msgwait_secs(cx),
            },
        }),
        StonithMode::Auto if !cx.options.managed_identity => None,
        StonithMode::Auto => {
            let mut map: Vec<String> =
                cx.inv.peers.iter().map(|p| format!("{}:{}", p.name, vm_name_of(cx, &p.name))).collect();
            map.sort();
            Some(Stonith {
                agent: FenceAgent::AzureArm {
                    subscription_id: cx.inv.azure.subscription_id.clone(),
                    resource_group: cx.inv.azure.resource_group.clone(),
                    host_map: map.join(";"),
                },
            })
        }
    }
}

/// The Azure VM name fence_azure_arm powers off for `host`: `db.vm_names`, else this VM's own
/// name from IMDS, else (the peer) its host name, as deploy-azure.sh creates them.
fn vm_name_of(cx: &Context, host: &str) -> String {
    cx.config.db.vm_names.get(host).cloned().unwrap_or_else(|| {
        if host == cx.inv.node.name {
            cx.inv.azure.vm_name.clone()
        } else {
            host.to_string()
        }
    })
}

/// Why STONITH is off, when it is (logged once per run; `status` reports it as FAIL).
pub fn stonith_off_reason(cx: &Context) -> Option<&'static str> {
    (cx.config.db.stonith == StonithMode::Off).then_some("db.stonith is off in the config")
}

/// The fencing inputs, checked before anything is touched (exit 2): `auto` needs a managed
/// identity (never guessed to be "off") and the Azure ids fence_azure_arm addresses the VMs by.
pub fn validate(cx: &Context) -> Result<()> {
    let db = &cx.config.db;
    for (host, vm) in &db.vm_names {
        if !cx.inv.peers.iter().any(|p| &p.name == host) {
            let peers: Vec<&str> = cx.inv.peers.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::input(format!(
                "db.vm_names has an entry for {host:?}, which is not a node of hainit-peers ({})",
                peers.join(", ")
            )));
        }
        if vm.is_empty() || vm.len() > 64 || !vm.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(Error::input(format!("db.vm_names: {host:?} maps to {vm:?}, which is not an Azure VM name")));
        }
    }
    if db.stonith != StonithMode::Auto {
        return Ok(());
    }
    if !cx.options.managed_identity {
        return Err(Error::input(format!(
            "db.stonith is auto (fence_azure_arm) but this VM has no managed identity: the IMDS identity \
             endpoint answered that none is assigned, so the fence agent could not authenticate and hainit will \
             not form a cluster without STONITH by guess. Either give VM {} a system-assigned managed identity \
             with the fence role on the resource group (docs/azure.md; `az vm identity assign` and `az role \
             assignment create`), or set `db.stonith: off` in the config to run without STONITH knowingly \
             (`status` then reports FAIL)",
            cx.inv.azure.vm_name
        )));
    }
    let azure = &cx.inv.azure;
    for (field, value) in [
        ("compute.subscriptionId", &azure.subscription_id),
        ("compute.resourceGroupName", &azure.resource_group),
        ("compute.name", &azure.vm_name),
    ] {
        if value.trim().is_empty() {
            return Err(Error::input(format!(
                "IMDS document: {field} is empty, and fence_azure_arm (db.stonith: auto) needs it to address the VMs"
            )));
        }
    }
    Ok(())
}
