#!/usr/bin/env python3
"""`packer validate` of the EL templates with the packer this machine has.

  validate.py [-var NAME=VALUE ...] TEMPLATE...     (TEMPLATE: a file in images/packer/)

The templates need packer >= 1.14 and packer-plugin-azure >= 2.3.0 (their `packer` block). Debian
12's packer is 1.6.6: it predates `required_plugins` and its built-in azure-arm builder predates
`public_ip_sku`. When the packer here is older than 1.7, each template is validated without those
two — the `packer` block and the `public_ip_sku` line, nothing else — from a copy of images/ in a
temporary directory (so ${path.root} resolves as in the repository); the
plugin pin is judged by tests/it/azure/images.rs instead. With a newer packer the templates are
validated as they are. Exit: packer's.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.dirname(HERE)
# What packer 1.6.6 does not know, and why the templates have it.
NEWER_THAN_1_6 = ["public_ip_sku"]


def packer_version():
    out = subprocess.run(["packer", "version"], capture_output=True, text=True).stdout
    m = re.search(r"Packer v(\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise SystemExit("validate.py: cannot read the version of packer: %r" % out[:200])
    return tuple(int(x) for x in m.groups())


def without_packer_block(text):
    """The template without its top-level `packer { ... }` block (braces counted, strings skipped)."""
    m = re.search(r"^packer\s*\{", text, re.M)
    if not m:
        return text
    depth, i, in_str = 0, m.end() - 1, False
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[:m.start()] + text[i + 1:].lstrip("\n")
        i += 1
    raise SystemExit("validate.py: unbalanced packer block")


def for_old_packer(text):
    text = without_packer_block(text)
    for attr in NEWER_THAN_1_6:
        text = re.sub(r"^\s*%s\s*=.*\n" % attr, "", text, flags=re.M)
    return text


def main(argv):
    args, templates = [], []
    it = iter(argv[1:])
    for a in it:
        if a == "-var":
            args += [a, next(it)]
        else:
            templates.append(a)
    if not templates:
        sys.stderr.write(__doc__)
        return 2
    version = packer_version()
    if version >= (1, 7, 0):
        return max(subprocess.run(["packer", "validate"] + args + [t], cwd=HERE).returncode for t in templates)
    rc = 0
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(IMAGES, os.path.join(tmp, "images"), symlinks=True)
        for t in templates:
            path = os.path.join(tmp, "images", "packer", os.path.basename(t))
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(for_old_packer(text))
            print("validate.py: packer %s: %s without its packer block and %s" % (
                ".".join(map(str, version)), t, ", ".join(NEWER_THAN_1_6)), flush=True)
            r = subprocess.run(["packer", "validate"] + args + [os.path.basename(t)],
                               cwd=os.path.join(tmp, "images", "packer"))
            rc = max(rc, r.returncode)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
