"""The README stays short and current, and the documentation's links lead somewhere.

README.md: at most 200 lines, no run log (no lab run id, no date), every page in docs/ in its
index, and every `make` target, script and `--flag` it names exists. README.md and docs/*.md:
every relative link names a file that exists, and a `#anchor` names a heading of that file
(GitHub's heading ids).
"""

import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
README_MAX_LINES = 200

# A lab run id (`20261206-004728-192f`), or one shortened as the old README did (`…-192f`).
RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b|…-[0-9a-f]{4}\b")
DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+).*?\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def unfenced(text):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def prose_lines(text):
    """(line number, line) outside fenced code blocks, inline code removed."""
    for n, line in unfenced(text):
        yield n, INLINE_CODE.sub("", line)


def slug(heading):
    """GitHub's id for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text):
    """Every heading id of a Markdown text, duplicates numbered as GitHub does."""
    seen = {}
    out = set()
    for _, line in unfenced(text):
        m = HEADING.match(line.replace("`", ""))
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else "%s-%d" % (base, n))
    return out


def broken_links(path, text, read=None, exists=os.path.exists):
    """Every relative link in `text` (the file at `path`) that leads nowhere, as messages."""
    read = read or globals()["read"]
    problems = []
    for n, line in prose_lines(text):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            where = "%s:%d: link %s" % (os.path.relpath(path, REPO), n, target)
            if not exists(dest):
                problems.append("%s: %s does not exist" % (where, os.path.relpath(dest, REPO)))
            elif anchor and dest.endswith(".md") and anchor not in anchors(read(dest)):
                problems.append("%s: no heading with the id #%s in %s" % (where, anchor, os.path.relpath(dest, REPO)))
    return problems


def run_log_lines(text):
    """Lines of the README that read like a lab run's log: a run id or a date."""
    return ["%d: %s" % (n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if RUN_ID.search(line) or DATE.search(line)]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def doc_pages():
    docs = os.path.join(REPO, "docs")
    return sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))


class TheRepository(unittest.TestCase):
    def test_the_readme_fits_in_200_lines(self):
        n = len(read(os.path.join(REPO, "README.md")).splitlines())
        self.assertLessEqual(n, README_MAX_LINES, "README.md has %d lines; move detail into docs/" % n)

    def test_the_readme_holds_no_run_log(self):
        lines = run_log_lines(read(os.path.join(REPO, "README.md")))
        self.assertEqual(lines, [], "README.md holds run ids or dates (measured figures go to docs/, "
                                    "run logs to the runs' own reports)")

    def test_every_relative_link_resolves(self):
        problems = []
        for path in [os.path.join(REPO, "README.md")] + doc_pages():
            problems += broken_links(path, read(path))
        self.assertEqual(problems, [])

    def test_the_readme_lists_every_docs_page(self):
        readme = os.path.join(REPO, "README.md")
        linked = {os.path.normpath(os.path.join(REPO, t.partition("#")[0]))
                  for _, line in prose_lines(read(readme)) for t in LINK.findall(line)}
        missing = [os.path.relpath(p, REPO) for p in doc_pages() if p not in linked]
        self.assertEqual(missing, [], "README.md's \"Documentation\" section does not link these pages")


def make_targets(makefile):
    return set(re.findall(r"^([A-Za-z0-9_.-]+):", makefile, re.M))


def known_flags():
    """Every long flag hainit (src/cli.rs fields), deploy-azure.sh and the Azure drill take."""
    cli = read(os.path.join(REPO, "src", "cli.rs"))
    flags = {"--" + f.replace("_", "-") for f in re.findall(r"^\s*(?:pub )?([a-z_]+): ", cli, re.M)}
    for script in ("scripts/deploy-azure.sh", "scripts/azure/drill.py"):
        flags |= set(re.findall(r"--[a-z][a-z0-9-]*", read(os.path.join(REPO, script))))
    return flags


def unknown_commands(text, targets, flags, exists):
    """`make` targets, repository paths and flags in `text` that do not exist, as messages."""
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        for t in re.findall(r"\bmake ([a-z][a-z0-9-]*)", line):
            if t not in targets:
                problems.append("%d: make %s: no such target in the Makefile" % (n, t))
        for path in re.findall(r"(?<![\w/.])((?:scripts|images|cloud-init|src|tests|docs)/[\w./-]*\w)", line):
            if not exists(path):
                problems.append("%d: %s does not exist" % (n, path))
        ours = re.split(r"\baz (?=[a-z])", line)[0]  # the Azure CLI's own flags are not ours to check
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", ours):
            if flag not in flags:
                problems.append("%d: %s is no flag of hainit, deploy-azure.sh or drill.py" % (n, flag))
    return problems


class TheReadmesCommands(unittest.TestCase):
    def test_every_target_script_and_flag_exists(self):
        targets = make_targets(read(os.path.join(REPO, "Makefile")))
        problems = unknown_commands(read(os.path.join(REPO, "README.md")), targets, known_flags(),
                                    lambda p: os.path.exists(os.path.join(REPO, p)))
        self.assertEqual(problems, [])


class TheChecks(unittest.TestCase):
    """The checks above find what they are for (so a green run means something)."""

    def test_a_missing_file_and_a_missing_heading_are_found(self):
        page = os.path.join(REPO, "docs", "x.md")
        text = "# Top\n\nSee [a](lab.md), [b](nothere.md), [c](#top), [d](#nope), [e](https://e.org/x).\n"
        files = {page: text, os.path.join(REPO, "docs", "lab.md"): "# The lab\n"}
        problems = broken_links(page, text, read=files.get, exists=files.__contains__)
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("docs/nothere.md does not exist", problems[0])
        self.assertIn("no heading with the id #nope", problems[1])

    def test_links_in_code_are_not_links(self):
        text = "```\n[a](gone.md)\n```\nand `[b](gone.md)`\n"
        self.assertEqual(broken_links(os.path.join(REPO, "README.md"), text), [])

    def test_heading_ids_follow_github(self):
        text = "# The db role: data disk and DRBD\n## `--wipe-data-disk=DEV`\n## Notes\n## Notes\n```\n# not a heading\n```\n"
        self.assertEqual(anchors(text), {"the-db-role-data-disk-and-drbd", "--wipe-data-diskdev", "notes", "notes-1"})

    def test_a_missing_target_script_or_flag_is_found(self):
        text = "make lab\nmake lab-up\nscripts/deploy-azure.sh --dry-run --dry\nscripts/gone.sh\naz vm list --query x\n"
        problems = unknown_commands(text, {"lab"}, {"--dry-run"}, lambda p: p == "scripts/deploy-azure.sh")
        self.assertEqual(problems, ["2: make lab-up: no such target in the Makefile", "3: --dry is no flag of hainit, "
                                    "deploy-azure.sh or drill.py", "4: scripts/gone.sh does not exist"])

    def test_run_ids_and_dates_are_found(self):
        text = "ok\nfailover 54.0 s (…-159f)\nrun 20261206-004728-192f passed\nmeasured 2026-12-03\nsha 9f3c2a1b\n"
        self.assertEqual([line.split(":")[0] for line in run_log_lines(text)], ["2", "3", "4"])


if __name__ == "__main__":
    unittest.main()
