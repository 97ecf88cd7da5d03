# Runs `pcs -f FILE ...` commands, one per line of stdin (shell-quoted), in one interpreter.
# Each pcs start costs about 1 s importing pcs on hardware and about 40 s under emulation;
# the commands themselves are fast. Written by hainit (db.cluster.resources); see pcs.rs.
#
# Every line must use the same `-f FILE`: pcs caches its command runner, with CIB_file, on the
# first call. The first failing command stops the batch with its exit status.
import shlex
import sys

from pcs.entry_points.cli import main

lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
cmds = [shlex.split(line) for line in lines]
files = set(c[2] if len(c) > 2 and c[:2] == ["pcs", "-f"] else None for c in cmds)
if len(files) != 1 or None in files:
    sys.exit("pcs-batch: every line must start with `pcs -f FILE` and name the same FILE")
for line, argv in zip(lines, cmds):
    print("+ " + line, flush=True)
    try:
        main(argv[1:])
    except SystemExit as e:
        if e.code not in (None, 0):
            print("pcs-batch: exit %s from: %s" % (e.code, line), file=sys.stderr, flush=True)
            sys.exit(e.code if isinstance(e.code, int) else 1)
    sys.stdout.flush()
    sys.stderr.flush()
