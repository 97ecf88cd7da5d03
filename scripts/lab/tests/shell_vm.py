"""A lab VM whose ssh runs the command in a local shell, with stand-in tools (a fake hainit, …)
first on PATH: the lab's guest-side commands run for real against them (test_rerun, test_converge)."""

import os
import subprocess
import types


class ShellVM:
    def __init__(self, name, role, bin_dir, vm_dir, running=True, env=None):
        self.name, self.spec, self.dir, self.bin = name, types.SimpleNamespace(role=role), vm_dir, bin_dir
        self.up = running
        self.env = env or {}

    def running(self):
        return self.up

    def path(self, leaf):
        return os.path.join(self.dir, leaf)

    def ssh(self, command, check=True, timeout=120, input=None):
        env = dict(os.environ, PATH=self.bin + ":" + os.environ["PATH"], **self.env)
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=timeout,
                              input=input)
