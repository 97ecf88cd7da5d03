"""The lab's Azure Resource Manager: the four calls fence_azure_arm makes, over HTTP on a unix socket
that each db VM reaches at 169.254.169.253:80 (qemu guestfwd, vm.py), beside its IMDS.

    GET  /subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines
    GET  .../virtualMachines/VM/instanceView        PowerState/running or PowerState/stopped
    POST .../virtualMachines/VM/powerOff             skipShutdown: a power cut of the VM's qemu
    POST .../virtualMachines/VM/start                recorded; the lab powers the VM on (below)

Like ARM it wants a bearer token (the VM's managed identity, from its IMDS), and it answers 404 for
a subscription, resource group or VM that does not exist, so a wrong subscriptionId, resourceGroup
or pcmk_host_map in hainit's fence device fails here as it would on Azure.

powerOff kills the VM's qemu without the lab's say (VM.power_cut_by_arm): the lab counts the VM as
fenced, as it did after an sbd reset, and starts it again at its next step that starts fenced VMs
(steps.start_fenced) — Azure's `start` of a fenced VM, a few minutes later under emulation. Every
request goes to RUN/arm.jsonl with the caller (the guest's host name) and the host time.
"""

import json
import os
import re
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler

from . import imds

PATH = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute"
                  r"/virtualMachines(?:/(?P<vm>[^/]+)(?:/(?P<op>instanceView|powerOff|start))?)?$", re.IGNORECASE)


def socket_path(run_dir):
    """The emulated ARM's socket (in RUN: a unix socket path, keep it short)."""
    return os.path.join(run_dir, "arm.sock")


class Arm:
    """vms() -> {name: VM}: what the resource group holds right now (lab.vms)."""

    def __init__(self, socket_path, vms, events_path, subscription=imds.SUBSCRIPTION,
                 resource_group=imds.RESOURCE_GROUP):
        self.socket_path, self.vms, self.events_path = socket_path, vms, events_path
        self.subscription, self.resource_group = subscription, resource_group
        self.lock = threading.Lock()
        self.events = []
        self.server = None

    # ---- the API, pure enough to test without a socket -------------------------------------
    def handle(self, method, path, headers):
        """(status, JSON body or None) for one request."""
        if not (headers.get("Authorization") or "").startswith("Bearer ") or len(headers["Authorization"]) < 8:
            return 401, error("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        m = PATH.match(path.split("?", 1)[0])
        if not m:
            return 404, error("InvalidResourceType", "no such resource type: %s" % path)
        if m["sub"].lower() != self.subscription.lower():
            return 404, error("SubscriptionNotFound", "The subscription '%s' could not be found." % m["sub"])
        if m["rg"].lower() != self.resource_group.lower():
            return 404, error("ResourceGroupNotFound", "Resource group '%s' could not be found." % m["rg"])
        vms = self.vms()
        if m["vm"] is None:
            if method != "GET":
                return 405, error("MethodNotAllowed", method)
            return 200, {"value": [{"name": name, "id": vm_id(self, name)} for name in sorted(vms)]}
        vm = next((v for n, v in vms.items() if n.lower() == m["vm"].lower()), None)
        if vm is None:
            return 404, error("ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/%s' under "
                              "resource group '%s' was not found." % (m["vm"], m["rg"]))
        op = (m["op"] or "").lower()
        if method == "GET" and op == "instanceview":
            state = "running" if vm.running() else "stopped"
            return 200, {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/" + state}]}
        if method == "GET" and op == "":
            return 200, {"name": vm.name, "id": vm_id(self, vm.name)}
        if method == "POST" and op == "poweroff":
            return 202, {"op": "powerOff", "vm": vm.name, "powered_off": vm.power_cut_by_arm()}
        if method == "POST" and op == "start":
            return 202, {"op": "start", "vm": vm.name, "running": vm.running()}
        return 405, error("MethodNotAllowed", "%s %s" % (method, path))

    def record(self, caller, method, path, status, body):
        event = {"t": round(time.time(), 3), "caller": caller, "method": method, "path": path, "status": status}
        if body and status == 202:
            event.update(body)
        with self.lock:
            self.events.append(event)
            with open(self.events_path, "a") as f:
                f.write(json.dumps(event) + "\n")

    def power_offs(self):
        """[(host time, caller, VM name, whether it was running)] of every accepted powerOff."""
        with self.lock:
            return [(e["t"], e["caller"], e["vm"], e["powered_off"]) for e in self.events if e.get("op") == "powerOff"]

    # ---- serving ----------------------------------------------------------------------------
    def start(self):
        arm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def answer(self):
                status, body = arm.handle(self.command, self.path, self.headers)
                arm.record(self.headers.get("X-Lab-Caller", "?"), self.command, self.path, status, body)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = answer

            def address_string(self):
                return "guest"

            def log_message(self, *_):
                pass

        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        self.server = socketserver.ThreadingUnixStreamServer(self.socket_path, Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass


def vm_id(arm, name):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (
        arm.subscription, arm.resource_group, name)


def error(code, message):
    return {"error": {"code": code, "message": message}}
