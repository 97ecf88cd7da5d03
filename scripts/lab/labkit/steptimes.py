"""Where a first boot spends its time: hainit's steps, timed from its own log lines."""

import calendar
import re

# 2026-12-01T21:55:55.702677Z  INFO step{id="common.sysctl"}: changed actions=2
STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+[A-Z]+\s")
END = re.compile(r'step\{id="?([\w.-]+)"?\}: (ok|changed)\b')


def epoch(stamp):
    whole, _, frac = stamp.partition(".")
    return calendar.timegm(tuple(int(x) for x in re.split(r"[-T:]", whole)) + (0, 0, 0)) + float("0." + (frac or "0"))


def durations(journal):
    """[(step, seconds)] in the order the steps ended: each from the end of the step before it (or
    hainit's first line) to its own `ok`/`changed` line. A step that ends in a later hainit run (exit 3,
    the unit starts hainit again) is charged the time in between: that is what the boot waited for it."""
    out, prev = [], None
    for line in journal.splitlines():
        m = STAMP.search(line)
        if not m:
            continue
        t = epoch(m.group(1))
        if prev is None:
            prev = t
        end = END.search(line, m.end())
        if end:
            out.append((end.group(1), round(t - prev, 1)))
            prev = t
    return out


def slowest(steps, n=5):
    return sorted(steps, key=lambda s: -s[1])[:n]


def totals(steps):
    """Seconds per step name, summed over hainit runs, in first-seen order."""
    out = {}
    for name, secs in steps:
        out[name] = round(out.get(name, 0) + secs, 1)
    return out
