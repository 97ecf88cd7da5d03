"""The crash scenario's in-guest killer, run for real against a fake journal: it must SIGKILL
hainit when the n-th new action starts, not one journal line later and not on the backlog. The
whole command goes through sh, as ssh hands it to the guest's shell; systemd-run is faked to run
its command in the foreground."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import repair  # noqa: E402

SYSTEMD_RUN = """#!/bin/sh
while [ "${1#--}" != "$1" ]; do shift; done
exec "$@"
"""

# Prints a backlog (as `journalctl -f` does unless -n 0), then action starts 1 s apart, then a
# last line 6 s later: a killer that waits for the writer's next line fires only then.
JOURNALCTL = """#!/bin/sh
case " $* " in *" -n 0 "*) ;; *) echo "start action=old-1"; echo "start action=old-2"; echo "start action=old-3";; esac
sleep 1; echo "start action=a"
sleep 1; echo "start action=b"
sleep 6; echo "converged"
"""


class Killer(unittest.TestCase):
    def test_it_kills_when_the_nth_new_action_starts(self):
        with tempfile.TemporaryDirectory() as d:
            victim = subprocess.Popen(["sleep", "60"])
            try:
                fakes = (("journalctl", JOURNALCTL), ("systemd-run", SYSTEMD_RUN),
                         ("pidof", "#!/bin/sh\necho %d\n" % victim.pid))
                for name, text in fakes:
                    path = os.path.join(d, name)
                    with open(path, "w") as f:
                        f.write(text)
                    os.chmod(path, 0o755)
                command = repair.killer(15, 2)
                self.assertTrue(command.startswith("systemd-run --unit=lab-killer-15 --collect sh -c "), command)
                t0 = time.time()
                watcher = subprocess.Popen(["sh", "-c", command], env=dict(os.environ, PATH=d + ":" + os.environ["PATH"]))
                victim.wait(timeout=15)
                killed_after = time.time() - t0
                watcher.wait(timeout=15)
            finally:
                victim.kill()
                victim.wait()
        self.assertEqual(victim.returncode, -9)
        # The 2nd new action starts at ~2 s; the backlog would fire at once, the old form at ~8 s.
        self.assertGreater(killed_after, 1.5)
        self.assertLess(killed_after, 4.5)


if __name__ == "__main__":
    unittest.main()
