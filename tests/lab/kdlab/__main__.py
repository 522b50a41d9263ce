import os
import sys


def _run() -> int:
    # Every command needs root (network namespaces): say so before importing anything else the lab needs.
    if os.geteuid() != 0:
        from kdlab.errors import NOT_ROOT

        print(NOT_ROOT, file=sys.stderr)
        return 2
    from kdlab.cli import main

    return main()


sys.exit(_run())
