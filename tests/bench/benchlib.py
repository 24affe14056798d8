"""benchlib: what the Python benchmarks share: berthtest (the e2e harness)
imported with BERTHD pointing at the berthd under test.

BERTHD from the environment wins; else the build's src/berthd next to
this source tree or below the current directory; else berthd on PATH.
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))


def find_berthd():
    if os.environ.get("BERTHD"):
        return os.environ["BERTHD"]
    for cand in (os.path.join(HERE, "..", "..", "src", "berthd"),
                 os.path.join(os.getcwd(), "src", "berthd")):
        if os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return shutil.which("berthd") or "berthd"


os.environ["BERTHD"] = find_berthd()
import berthtest  # noqa: E402,F401  (reads BERTHD at import)
