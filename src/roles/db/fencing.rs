//! The fence device this node's cluster gets (safety rule 4): SBD on a shared disk, or
//! fence_azure_arm with the VM's managed identity. The one place that decides it; the cluster
//! configuration, the DRBD resource file and `status` all ask here.

use super::sbd;
use crate::cib;
use crate::config::StonithMode;
use crate::engine::Context;

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

/// STONITH: SBD when configured; fence_azure_arm when the VM has a managed identity (and the
/// config allows it); otherwise none (safety rule 4: logged, shown by `status`).
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
            let vm_of = |host: &str| {
                cx.config.db.vm_names.get(host).cloned().unwrap_or_else(|| {
                    if host == cx.inv.node.name {
                        cx.inv.azure.vm_name.clone()
                    } else {
                        host.to_string()
                    }
                })
            };
            let mut map: Vec<String> = cx.inv.peers.iter().map(|p| format!("{}:{}", p.name, vm_of(&p.name))).collect();
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

/// Why STONITH is off, when it is (logged once per run and shown by `status`).
pub fn stonith_off_reason(cx: &Context) -> Option<&'static str> {
    match cx.config.db.stonith {
        StonithMode::Off => Some("db.stonith is off in the config"),
        StonithMode::Auto if !cx.options.managed_identity => Some(
            "the VM has no managed identity (IMDS token endpoint refused), so fence_azure_arm cannot authenticate, \
             and db.stonith is not sbd",
        ),
        StonithMode::Auto | StonithMode::Sbd => None,
    }
}
