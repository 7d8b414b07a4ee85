"""Services above the node runtime that Erlang and Elixir applications speak.

* :class:`PgScope` — OTP ``pg`` process groups (kernel's ``pg``, OTP 23+), both ways.
* :class:`PubSub` — Phoenix.PubSub's PG2 adapter protocol over a ``pg`` scope, so a
  Python node subscribes and broadcasts in an Elixir application's PubSub.
"""

from nodemesh.services._membership import GroupChange, Joined, Left
from nodemesh.services.pg import PgScope
from nodemesh.services.pubsub import PubSub, Subscription, adapter_groups

__all__ = ["GroupChange", "Joined", "Left", "PgScope", "PubSub", "Subscription", "adapter_groups"]
