"""The lab's private network: one network namespace per run, owned by that run.

Inside it: br-db (the db subnet) and br-web (the web subnet) with one tap per VM, the namespace
routing between them like the VNet does, the load balancers' DNAT (nftables table `ip hlab`),
168.63.129.16 as the probe source, and a client address in the web subnet. Everything the lab runs
that talks to the VMs (fake IMDS, load balancers, the drill's clients, ssh) runs in here, so
nothing of it touches the host's own network and fixed addresses and ports cannot collide with
another run or another program.

One way in from the host (expose): a veth pair, the host's end at HOST_IP with a route to the
public load balancer's address alone (PUBLIC_VIP/32), the namespace's end routing only HOST_IP
back. So http://10.0.3.10/ (WordPress's siteurl) opens in a browser on the host, through the same
emulated public LB; nothing else of the lab is routed from the host, and nothing in the lab has a
route out. Deleting the namespace deletes the pair and with it the host's route.
"""

from . import common

DB_SUBNET = "10.0.1"
WEB_SUBNET = "10.0.2"
VIP = DB_SUBNET + ".10"
PUBLIC_VIP = "10.0.3.10"
HOST_IP = "10.0.3.1"  # the host's end of the way in: a visitor on the public side
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
        # The host's end of the way in (expose), and the namespace it is in (None: the host's own).
        self.host_link = host_link_name(self.ns)
        self.host_ns = None

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

    def expose(self, host_ns=None):
        """The veth pair from the host (or from namespace host_ns, for tests) to the public LB."""
        host = ["ip"] + (["-n", host_ns] if host_ns else [])
        taken = common.run(host + ["route", "show", PUBLIC_VIP + "/32"], log=self.log).stdout.strip()
        if taken:
            raise common.LabError("%s is already routed on this machine (%s): a stack an earlier run kept? "
                                  "make lab-down stops it" % (PUBLIC_VIP, taken))
        self.host_ns = host_ns
        common.run(host + ["link", "add", self.host_link, "type", "veth", "peer", "name", "public",
                           "netns", self.ns], log=self.log)
        common.run(host + ["addr", "add", HOST_IP + "/32", "dev", self.host_link], log=self.log)
        common.run(host + ["link", "set", self.host_link, "up"], log=self.log)
        common.run(host + ["route", "add", PUBLIC_VIP + "/32", "dev", self.host_link, "src", HOST_IP], log=self.log)
        self.ip("link", "set", "public", "up")
        self.ip("route", "add", HOST_IP + "/32", "dev", "public")

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
        remove_host_link(self.host_link, self.host_ns)


def tap_name(vm_name):
    return ("t-" + vm_name)[:15]


def host_link_name(ns):
    return "hv-" + ns


def remove_host_link(name, host_ns=None):
    """Delete the host's end of the way in (its peer and the host's route go with it). The namespace's
    deletion takes it too, but only once no process is left inside; this does not wait for that.
    True when there was one."""
    host = ["ip"] + (["-n", host_ns] if host_ns else [])

    def exists():
        return common.run(host + ["link", "show", name], check=False).returncode == 0
    if not exists():
        return False
    # The namespace's deletion may take the pair between the look and the delete.
    r = common.run(host + ["link", "del", name], check=False)
    if r.returncode != 0 and exists():
        raise common.LabError("%s exited %d: %s" % (" ".join(r.args), r.returncode, r.stderr.strip()))
    return True
