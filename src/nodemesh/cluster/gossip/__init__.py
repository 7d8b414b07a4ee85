"""libcluster-compatible gossip: the wire format (:mod:`.wire`) and its UDP sockets
(:mod:`.sockets`). The strategy itself is :mod:`nodemesh.cluster.strategies.gossip`."""
