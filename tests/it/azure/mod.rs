//! Issue 6: images, cloud-init custom-data, scripts/deploy-azure.sh and scripts/failover-drill.sh,
//! judged by packer, cloud-init, systemd-analyze, hainit's own config and inventory parsers, and a
//! fake `az` (tests/fixtures/azure/fake-az) that logs every call and keeps the created resources.

pub(crate) mod cloud_init;
mod deploy;
mod drill;
mod fake;
mod images;
