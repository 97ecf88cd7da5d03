"""The lab tests' shared helper: a result rendered as report.md."""

import tempfile

from labkit import report


def markdown(result):
    """report.write(result) in a throw-away directory; the Markdown it wrote."""
    with tempfile.TemporaryDirectory() as d:
        with open(report.write(result, d)) as f:
            return f.read()
