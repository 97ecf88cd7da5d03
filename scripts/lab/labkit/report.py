"""report.md from report.json (placeholder until the full report lands)."""

import json
import os


def write(result, run_dir):
    path = os.path.join(run_dir, "report.md")
    with open(path, "w") as f:
        f.write("# hainit lab report %s\n\n```\n%s\n```\n" % (result["run_id"], json.dumps(result, indent=1)[:4000]))
    return path
