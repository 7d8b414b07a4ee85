"""The Kubernetes API, below the strategy (:mod:`nodemesh.cluster.strategies.kubernetes`):
its JSON read without I/O (:mod:`.api`), reaching the server and explaining a 403
(:mod:`.access`), the HTTPS client (:mod:`.client`) and the strategy's options
(:mod:`.options`)."""
