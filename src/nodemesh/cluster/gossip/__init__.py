"""libcluster-compatible gossip, below the strategy (:mod:`nodemesh.cluster.strategies.gossip`):
the wire format (:mod:`.wire`, pure), the options (:mod:`.options`), the UDP socket
(:mod:`.sockets`) and the bounded bookkeeping (:mod:`.tracking`)."""
