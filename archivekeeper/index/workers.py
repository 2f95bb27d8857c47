"""Starting a Python worker process (EXIF reading, shoot listing).

A worker runs isolated (`-I`: no PYTHON* variables, no user site-packages, not the current
folder, which may be a customer's and hold anything) and is given this process's sys.path, in
order: it imports exactly the archivekeeper and standard library this process does.
"""

from __future__ import annotations

import json
import sys

_BOOT = ("import json, runpy, sys; module = sys.argv[1]; sys.path[:] = json.loads(sys.argv[2]); "
         "sys.argv[:] = [module, *sys.argv[3:]]; "
         "runpy.run_module(module, run_name='__main__', alter_sys=True)")


def command(module: str, *args: str) -> list[str]:
    """Given a module with a __main__ block and its arguments, return the worker's argv."""
    path = [entry for entry in sys.path if entry]  # "" would mean the worker's current folder
    return [sys.executable, "-I", "-c", _BOOT, module, json.dumps(path), *args]
