//! Issues 6 and 18: images (the Debian 12 VHD judged by images/azure/check-image.py, the EL
//! templates by packer), cloud-init custom-data, scripts/deploy-azure.sh with the image upload,
//! and the Azure drill (scripts/azure/drill.py), judged by packer, cloud-init, systemd-analyze,
//! hainit's own config and inventory parsers, and a
//! fake `az` (tests/fixtures/azure/fake-az) that logs every call and keeps the created resources.

pub(crate) mod cloud_init;
mod deploy;
mod drill;
mod fake;
mod images;
