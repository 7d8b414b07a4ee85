"""Real tools the tests run (erl, elixir, nft, openssl...): found, skipped or failed."""

from __future__ import annotations

import os
import shutil

import pytest


def require_command(command: str, package: str) -> str:
    """Return the path of ``command``; skip the test where it is absent, but fail under
    CI (``CI`` set), where ``.ci/run`` must have installed the Debian ``package``."""
    found = shutil.which(command)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{command} is not installed: .ci/run must install {package}")
        pytest.skip(f"{command} is not installed (apt-get install {package})")
    return found
