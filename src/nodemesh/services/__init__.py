"""Services above the node runtime that Erlang and Elixir applications speak.

* :class:`PgScope` — OTP ``pg`` process groups (kernel's ``pg``, OTP 23+), both ways.
* :class:`PubSub` — Phoenix.PubSub's PG2 adapter protocol over a ``pg`` scope, so a
  Python node subscribes and broadcasts in an Elixir application's PubSub.
* :class:`Roles` — roles over a ``pg`` scope and calls to any live member (``call_any``).
"""

from nodemesh.services._membership import GroupChange, Joined, Left
from nodemesh.services.pg import PgScope
from nodemesh.services.pubsub import PubSub, Subscription, adapter_groups
from nodemesh.services.roles import Member, Roles, RolesStatistics

__all__ = [
    "GroupChange",
    "Joined",
    "Left",
    "Member",
    "PgScope",
    "PubSub",
    "Roles",
    "RolesStatistics",
    "Subscription",
    "adapter_groups",
]
