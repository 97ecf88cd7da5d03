//! The parts of the IMDS instance document hainit uses, read from JSON with errors that say
//! which field was wrong. IMDS sends every primitive as a string and `""` for "not applicable";
//! unknown keys are ignored so newer api-versions keep working.

use std::net::Ipv4Addr;

use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceDoc {
    /// `compute.name`: the Azure VM resource name (what fencing calls the VM).
    pub vm_name: String,
    /// `compute.osProfile.computerName`: the guest host name, when IMDS reports it.
    pub computer_name: Option<String>,
    pub vm_id: String,
    pub resource_group: String,
    pub subscription_id: String,
    pub location: String,
    /// `compute.zone`; `None` when the VM is not zonal.
    pub zone: Option<String>,
    /// `compute.userData`, still base64 as IMDS sends it; `None` when empty.
    pub user_data: Option<String>,
    /// `compute.tagsList` in document order.
    pub tags: Vec<Tag>,
    /// Private IPv4 of the first interface.
    pub private_ip: Ipv4Addr,
    /// Subnet of that address as (network, prefix), when IMDS reports it.
    pub subnet: Option<(Ipv4Addr, u8)>,
    /// LUNs of the attached data disks.
    pub data_disk_luns: Vec<u32>,
}

impl InstanceDoc {
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.name == name).map(|t| t.value.as_str())
    }

    /// Parse the body of `GET /metadata/instance`.
    pub fn from_json(body: &str) -> Result<Self> {
        let root: Value = serde_json::from_str(body).map_err(|e| {
            Error::input(format!("IMDS document is not JSON ({e}); body starts with {:?}", preview(body)))
        })?;
        if !root.is_object() {
            return Err(Error::input(format!("IMDS document is not a JSON object but {}", kind(&root))));
        }
        let compute = object(&root, "compute")?;
        let network = object(&root, "network")?;
        Ok(InstanceDoc {
            vm_name: required_str(compute, "compute.name")?,
            computer_name: opt_str(compute, "compute.osProfile.computerName")?,
            vm_id: opt_str(compute, "compute.vmId")?.unwrap_or_default(),
            resource_group: opt_str(compute, "compute.resourceGroupName")?.unwrap_or_default(),
            subscription_id: opt_str(compute, "compute.subscriptionId")?.unwrap_or_default(),
            location: opt_str(compute, "compute.location")?.unwrap_or_default(),
            zone: opt_str(compute, "compute.zone")?,
            user_data: opt_str(compute, "compute.userData")?,
            tags: tags(compute)?,
            private_ip: first_private_ip(network)?,
            subnet: first_subnet(network),
            data_disk_luns: data_disk_luns(compute)?,
        })
    }
}

fn preview(body: &str) -> String {
    body.chars().take(60).collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object<'a>(root: &'a Value, key: &str) -> Result<&'a Value> {
    match root.get(key) {
        Some(v @ Value::Object(_)) => Ok(v),
        Some(other) => Err(Error::input(format!("IMDS document: {key} is {}, expected an object", kind(other)))),
        None => Err(Error::input(format!("IMDS document has no {key} object"))),
    }
}

/// Walk a dotted path below `compute.` / `network.`; the first segment names the root.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').skip(1).try_fold(root, |v, key| v.get(key))
}

fn opt_str(root: &Value, path: &str) -> Result<Option<String>> {
    match lookup(root, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::input(format!("IMDS document: {path} is {}, expected a string", kind(other)))),
    }
}

fn required_str(root: &Value, path: &str) -> Result<String> {
    opt_str(root, path)?.ok_or_else(|| Error::input(format!("IMDS document: {path} is missing or empty")))
}

fn tags(compute: &Value) -> Result<Vec<Tag>> {
    let list = match compute.get("tagsList") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(Error::input(format!("IMDS document: compute.tagsList is {}, expected an array", kind(other))))
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let field = |key: &str| match entry.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(Error::input(format!(
                    "IMDS document: compute.tagsList[{i}] has no string {key:?} (entry: {entry})"
                ))),
            };
            Ok(Tag { name: field("name")?, value: field("value")? })
        })
        .collect()
}

fn first_interface(network: &Value) -> Result<&Value> {
    match network.get("interface") {
        Some(Value::Array(list)) => {
            list.first().ok_or_else(|| Error::input("IMDS document: network.interface is an empty array"))
        }
        Some(other) => {
            Err(Error::input(format!("IMDS document: network.interface is {}, expected an array", kind(other))))
        }
        None => Err(Error::input("IMDS document: network.interface is missing")),
    }
}

fn first_private_ip(network: &Value) -> Result<Ipv4Addr> {
    let iface = first_interface(network)?;
    let path = "network.interface[0].ipv4.ipAddress[0].privateIpAddress";
    let text = iface
        .get("ipv4")
        .and_then(|v| v.get("ipAddress"))
        .and_then(|v| v.get(0))
        .and_then(|v| v.get("privateIpAddress"))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::input(format!("IMDS document: {path} is missing")))?;
    text.parse().map_err(|_| Error::input(format!("IMDS document: {path} is {text:?}, not an IPv4 address")))
}

fn first_subnet(network: &Value) -> Option<(Ipv4Addr, u8)> {
    let subnet = first_interface(network).ok()?.get("ipv4")?.get("subnet")?.get(0)?;
    let address = subnet.get("address")?.as_str()?.parse().ok()?;
    let prefix = subnet.get("prefix")?.as_str()?.parse().ok().filter(|p| *p <= 32)?;
    Some((address, prefix))
}

fn data_disk_luns(compute: &Value) -> Result<Vec<u32>> {
    let Some(disks) = compute.get("storageProfile").and_then(|s| s.get("dataDisks")) else {
        return Ok(Vec::new());
    };
    let Some(disks) = disks.as_array() else {
        return Err(Error::input("IMDS document: compute.storageProfile.dataDisks is not an array"));
    };
    disks
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let lun = d.get("lun").and_then(Value::as_str).unwrap_or("");
            lun.parse().map_err(|_| {
                Error::input(format!(
                    "IMDS document: compute.storageProfile.dataDisks[{i}].lun is {lun:?}, not a number"
                ))
            })
        })
        .collect()
}

/// True when `body` is a token answer of the identity endpoint: a JSON object with a non-empty
/// string `access_token`.
pub fn is_token(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("access_token").and_then(Value::as_str).map(|t| !t.is_empty()))
        .unwrap_or(false)
}

/// Decode `userData` (standard base64, padding optional). `None` when it is not base64.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(compute: &str, network: &str) -> String {
        format!(r#"{{"compute": {compute}, "network": {network}}}"#)
    }

    const NET: &str = r#"{"interface":[{"ipv4":{"ipAddress":[{"privateIpAddress":"10.0.1.4","publicIpAddress":""}],"subnet":[{"address":"10.0.1.0","prefix":"24"}]}}]}"#;

    #[test]
    fn parses_the_fields_hainit_uses() {
        let body = doc(
            r#"{"name":"vm-a","osProfile":{"computerName":"db-a"},"vmId":"id-1","resourceGroupName":"rg",
               "subscriptionId":"sub","location":"westeurope","zone":"","userData":"aGk=",
               "tagsList":[{"name":"hainit-role","value":"db"},{"name":"odd","value":"a:b;c=d,e"}],
               "storageProfile":{"dataDisks":[{"lun":"0"},{"lun":"3"}]}, "somethingNew": {"x": 1}}"#,
            NET,
        );
        let d = InstanceDoc::from_json(&body).unwrap();
        assert_eq!(d.vm_name, "vm-a");
        assert_eq!(d.computer_name.as_deref(), Some("db-a"));
        assert_eq!(d.zone, None);
        assert_eq!(d.tag("odd"), Some("a:b;c=d,e"));
        assert_eq!(d.private_ip, Ipv4Addr::new(10, 0, 1, 4));
        assert_eq!(d.subnet, Some((Ipv4Addr::new(10, 0, 1, 0), 24)));
        assert_eq!(d.data_disk_luns, vec![0, 3]);
        assert_eq!(decode_base64(d.user_data.as_deref().unwrap()).unwrap(), b"hi");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("<html>", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"network":{}}"#, "no compute object"),
            (&doc(r#"{"name":""}"#, NET), "compute.name is missing or empty"),
            (&doc(r#"{"name":"a","tagsList":"x:y"}"#, NET), "compute.tagsList is a string"),
            (&doc(r#"{"name":"a","tagsList":[{"name":"x"}]}"#, NET), "compute.tagsList[0] has no string \"value\""),
            (&doc(r#"{"name":"a"}"#, r#"{"interface":[]}"#), "network.interface is an empty array"),
            (
                &doc(r#"{"name":"a"}"#, r#"{"interface":[{"ipv4":{"ipAddress":[{"privateIpAddress":"10.0.1"}]}}]}"#),
                "\"10.0.1\", not an IPv4 address",
            ),
            (&doc(r#"{"name":7}"#, NET), "compute.name is a number"),
        ];
        for (body, want) in cases {
            let e = InstanceDoc::from_json(body).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Input);
            assert!(e.to_string().contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn base64_decoding() {
        assert_eq!(decode_base64("aGFpbml0OgogIGxvZ19sZXZlbDogaW5mbwo=").unwrap(), b"hainit:\n  log_level: info\n");
        assert_eq!(decode_base64("not base64!"), None);
    }
}
