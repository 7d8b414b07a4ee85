"""``nodemesh doctor``: find what stops nodes from connecting, and say how to fix it.

Each check is a small function returning :class:`CheckResult` values (PASS, WARN or
FAIL, what was found, one line of fix), so it can be tested on its own;
:func:`diagnose` runs them in order and the CLI prints them with :func:`verdict`.

- :mod:`~nodemesh.doctor.names`: this node's name (syntax, long vs short, its host is
  this host), the cookie's source, long/short agreement with other nodes;
- :mod:`~nodemesh.doctor.network`: EPMD here and on a peer's host, the peer's
  distribution port, and a real handshake (cookies agree or differ);
- :mod:`~nodemesh.doctor.strategies`: per topology, the names it dials vs ours, its
  prerequisites (:mod:`~.kubernetes`: service account, API, RBAC; :mod:`~.dns`: answers;
  :mod:`~.gossip`: multicast route, port) and one discovery round
  (:mod:`~.discovery`, also used by ``nodemesh discover``).
"""

from nodemesh.doctor.result import CheckResult, Status, verdict
from nodemesh.doctor.run import DoctorOptions, diagnose

__all__ = ["CheckResult", "DoctorOptions", "Status", "diagnose", "verdict"]
