"""The skip shared by the tests that build network namespaces: they need root and some tools, and
say plainly when they did not run."""

import os
import shutil
import unittest


def need_root(what, tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if os.geteuid() != 0 or missing:
        raise unittest.SkipTest("%s needs root and %s (%s): NOT RUN"
                                % (what, "/".join(tools), ", ".join(missing) or "not root"))
