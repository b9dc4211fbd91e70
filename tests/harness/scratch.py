"""scratch.py - temporary directories that tests leave behind only on failure.

Each scenario writes spools, logs and a PostgreSQL data directory under a
mkdtemp() directory.  A test that passes removes them at exit; a test that
dies with an exception keeps them (the path is printed) so the logs can be
read.  SLUICE_KEEP_TMP=1 keeps every directory.
"""
import atexit
import os
import shutil
import sys
import tempfile

_dirs = []
_failed = False


def _note_failure(kind, value, tb):
    global _failed
    _failed = True
    _previous_hook(kind, value, tb)


def _cleanup():
    if _failed or os.environ.get("SLUICE_KEEP_TMP"):
        for d in _dirs:
            if os.path.isdir(d):
                print("kept for inspection: %s" % d, file=sys.stderr)
        return
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


_previous_hook = sys.excepthook
sys.excepthook = _note_failure
atexit.register(_cleanup)


def scratch_dir(prefix):
    """mkdtemp(prefix=...) removed at exit unless the test failed."""
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(d)
    return d
