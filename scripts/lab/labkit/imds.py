"""Per-VM Instance Metadata Service documents (the same shape as tests/common/mod.rs instance_doc)."""

import json

SUBSCRIPTION = "7d1f0c3e-52b4-4a2e-9d0b-3c8f1e6a9b21"
RESOURCE_GROUP = "rg-hainit-lab"


def document(name, ip, tags, data_disk=True, vm_id="00000000-0000-0000-0000-000000000000"):
    """An Azure IMDS /metadata/instance document for one VM: name = computer name = `name`."""
    subnet = ip.rsplit(".", 1)[0] + ".0"
    return {
        "compute": {
            "azEnvironment": "AzurePublicCloud",
            "location": "westeurope",
            "name": name,
            "osProfile": {"adminUsername": "azops", "computerName": name, "disablePasswordAuthentication": "true"},
            "resourceGroupName": RESOURCE_GROUP,
            "resourceId": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s"
            % (SUBSCRIPTION, RESOURCE_GROUP, name),
            "storageProfile": {
                "dataDisks": [{"lun": "0", "name": name + "-data0", "diskSizeGB": "1", "createOption": "Empty"}]
                if data_disk
                else []
            },
            "subscriptionId": SUBSCRIPTION,
            "tags": ";".join("%s:%s" % kv for kv in tags),
            "tagsList": [{"name": k, "value": v} for k, v in tags],
            "userData": "",
            "vmId": vm_id,
            "vmSize": "Standard_D2s_v5",
            "zone": "",
        },
        "network": {
            "interface": [
                {
                    "ipv4": {
                        "ipAddress": [{"privateIpAddress": ip, "publicIpAddress": ""}],
                        "subnet": [{"address": subnet, "prefix": "24"}],
                    },
                    "ipv6": {"ipAddress": []},
                    "macAddress": "6045BD000000",
                }
            ]
        },
    }


def db_tags(cluster, peers, vip):
    return [("hainit-role", "db"), ("hainit-cluster", cluster), ("hainit-peers", peers), ("hainit-vip", vip)]


def web_tags(cluster, vip, share):
    return [("hainit-role", "web"), ("hainit-cluster", cluster), ("hainit-vip", vip), ("hainit-share", share)]


def write(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
