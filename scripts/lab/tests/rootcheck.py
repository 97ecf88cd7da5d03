"""Shared by the tests that build network namespaces: the skip (they need root and some tools, and
say plainly when they did not run) and the stop of what they started."""

import os
import shutil
import subprocess
import unittest


def need_root(what, tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if os.geteuid() != 0 or missing:
        raise unittest.SkipTest("%s needs root and %s (%s): NOT RUN"
                                % (what, "/".join(tools), ", ".join(missing) or "not root"))


def stop_started(procs, namespaces):
    """Stop what a namespace test started, by its own ids: its processes, then its namespaces."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
    for ns in namespaces:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
