"""``python -m nodemesh.health [URL]``: ask ``/healthz``, exit 0 or 1.

A container HEALTHCHECK without curl; URL defaults to this host's
``http://127.0.0.1:$NODEMESH_HEALTH_PORT/healthz`` (port 8080 when unset).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def probe(url: str, timeout: float = 3.0) -> int:
    """GET ``url``: 0 for a 2xx answer, else 1 (for a container HEALTHCHECK)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nodemesh.health [URL]``; URL defaults to this host's /healthz."""
    args = list(sys.argv[1:] if argv is None else argv)
    port = os.environ.get("NODEMESH_HEALTH_PORT", "").strip() or "8080"
    url = args[0] if args else f"http://127.0.0.1:{port}/healthz"
    return probe(url)


if __name__ == "__main__":
    sys.exit(main())
