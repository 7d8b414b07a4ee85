# syntax=docker/dockerfile:1
# nodemesh: a Python process that is an Erlang distribution node, clustered automatically.
#
#   docker build -t nodemesh:0.1.0 .
#   docker run --rm -e NODEMESH_COOKIE=secret -e NODEMESH_STRATEGY=dns_poll \
#     -e NODEMESH_STRATEGY_QUERY=nodemesh -e NODEMESH_STRATEGY_NODE_BASENAME=nodemesh nodemesh:0.1.0
#
# The entrypoint names the node <basename>@<container IP> at start and execs
# `nodemesh run` in the foreground; see docs/deploy-docker.md and docs/deploy-kubernetes-*.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py ./
COPY src ./src
# Wheels of nodemesh and of its dependencies, resolved once here.
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# A fixed numeric user, so Kubernetes can check runAsNonRoot without a name lookup.
RUN groupadd --system --gid 10001 nodemesh \
 && useradd --system --uid 10001 --gid nodemesh --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin nodemesh
# Installs only the wheels built above: --no-index, so nothing unpinned is fetched.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels nodemesh
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/nodemesh-entrypoint

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NODEMESH_DIST_PORT=9100 \
    NODEMESH_HEALTH_PORT=8080
# EPMD (embedded in the node), the distribution port, health and metrics.
EXPOSE 4369 9100 8080
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "nodemesh.health"]
ENTRYPOINT ["nodemesh-entrypoint"]
CMD ["run"]
