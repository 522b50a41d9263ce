"""Offline stand-in for the get-pip bootstrap script that `ansible-test --venv` downloads.

ansible-test runs it inside each fresh virtual environment with get-pip's arguments; with no internet
the download fails, so `tests/tools/sanity.sh` puts this file where ansible-test caches the real one.
It bootstraps pip from the interpreter's own ensurepip and installs the requested packages from the
configured package index.
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", *[arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]])
