"""The lab's private network: one network namespace per run, owned by that run.

Inside it: br-db (the db subnet) and br-web (the web subnet) with one tap per VM, the namespace
routing between them like the VNet does, the load balancers' DNAT (nftables table `ip hlab`),
168.63.129.16 as the probe source, and a client address in the web subnet. Everything the lab runs
that talks to the VMs (fake IMDS, load balancers, the drill's clients, ssh) runs in here, so
nothing of it touches the host's own network and fixed addresses and ports cannot collide with
another run or another program.
"""

from . import common

DB_SUBNET = "10.0.1"
WEB_SUBNET = "10.0.2"
VIP = DB_SUBNET + ".10"
PUBLIC_VIP = "10.0.3.10"
CLIENT_IP = WEB_SUBNET + ".250"  # the drill's own VIP client: inside the web subnet the DB grants
PROBE_SOURCE = "168.63.129.16"
BRIDGES = {"db": ("br-db", DB_SUBNET + ".1"), "web": ("br-web", WEB_SUBNET + ".1")}

NFT_BASE = """
table ip hlab {
  chain lb_ilb {}
  chain lb_plb {}
  chain pre { type nat hook prerouting priority dstnat; policy accept; jump lb_ilb; jump lb_plb; }
  chain out { type nat hook output priority -100; policy accept; jump lb_ilb; jump lb_plb; }
}
"""


class LabNet:
    def __init__(self, run_id, log):
        self.ns = "hlab-" + run_id.rsplit("-", 1)[-1]
        self.log = log
        self.created = False

    def cmd(self, argv):
        """argv run inside the namespace."""
        return ["ip", "netns", "exec", self.ns] + list(argv)

    def ip(self, *args):
        return common.run(["ip", "-n", self.ns] + list(args), log=self.log)

    def up(self):
        common.run(["ip", "netns", "add", self.ns], log=self.log)
        self.created = True
        self.ip("link", "set", "lo", "up")
        common.run(self.cmd(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]), log=self.log)
        for role, (br, gw) in BRIDGES.items():
            self.ip("link", "add", br, "type", "bridge")
            self.ip("addr", "add", gw + "/24", "dev", br)
            self.ip("link", "set", br, "up")
        self.ip("addr", "add", CLIENT_IP + "/32", "dev", "br-web")
        # The drill's writes to the VIP leave from the client address, as a web node's would.
        self.ip("route", "add", VIP + "/32", "dev", "br-db", "src", CLIENT_IP)
        self.ip("addr", "add", PUBLIC_VIP + "/32", "dev", "lo")
        self.ip("addr", "add", PROBE_SOURCE + "/32", "dev", "lo")
        common.run(self.cmd(["nft", "-f", "-"]), input=NFT_BASE, log=self.log)

    def add_tap(self, vm_name, role):
        tap = tap_name(vm_name)
        self.ip("tuntap", "add", "dev", tap, "mode", "tap")
        self.ip("link", "set", tap, "master", BRIDGES[role][0])
        self.ip("link", "set", tap, "up")
        return tap

    def has_tap(self, vm_name):
        return common.run(["ip", "-n", self.ns, "link", "show", tap_name(vm_name)], check=False).returncode == 0

    def isolate(self, vm_names, on):
        """Bridge port isolation: isolated ports cannot reach each other, but still reach the namespace
        (load balancers, probes, routing to the web subnet). Cuts exactly the db-a <-> db-b link."""
        for name in vm_names:
            common.run(["bridge", "-n", self.ns, "link", "set", "dev", tap_name(name), "isolated",
                        "on" if on else "off"], log=self.log)

    def down(self):
        if self.created:
            common.run(["ip", "netns", "del", self.ns], check=False, log=self.log)
            self.created = False


def tap_name(vm_name):
    return ("t-" + vm_name)[:15]
