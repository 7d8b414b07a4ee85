"""The Kubernetes API over HTTPS: service-account files, one list request, one watch stream.

The thin asyncio shell (aiohttp) around :mod:`nodemesh.cluster.kubernetes.api`. Every
request re-reads the token (projected tokens rotate about hourly) and ``ca.crt``, and
verifies the server's certificate against that CA; when the directory has no ``ca.crt``,
against the system's CAs. Verification is never turned off. Every failure becomes a
:class:`KubernetesApiError` (a :class:`~nodemesh.errors.DiscoveryError`) saying what to
check; aiohttp's and ssl's exceptions do not leave this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from nodemesh.cluster.kubernetes.access import explain_forbidden, service_account_of
from nodemesh.cluster.kubernetes.api import Resource, WatchDecoder, WatchEvent, parse_status
from nodemesh.errors import DiscoveryError

__all__ = ["KubernetesApiError", "KubernetesClient", "ServiceAccount", "WatchStream"]


class KubernetesApiError(DiscoveryError):
    """The API answered with an error status (``status``) or could not be asked (None)."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ServiceAccount:
    """The files Kubernetes mounts into a pod: ``token``, ``ca.crt``, ``namespace``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._ca: bytes | None = None
        self._context: ssl.SSLContext | None = None

    def token(self) -> str:
        """The bearer token, read now. Raises DiscoveryError when there is none."""
        file = self.path / "token"
        try:
            token = file.read_text().strip()
        except OSError as exc:
            raise KubernetesApiError(
                f"cannot read the service account token {file}: {exc.strerror or exc} "
                "(is automountServiceAccountToken false, or kubernetes_service_account_path "
                "wrong?)"
            ) from exc
        if not token:
            raise KubernetesApiError(f"the service account token {file} is empty")
        return token

    def namespace(self) -> str | None:
        """The pod's namespace from the ``namespace`` file, or None without one."""
        try:
            return (self.path / "namespace").read_text().strip() or None
        except OSError:
            return None

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying TLS context for ``ca.crt`` (rebuilt when the file changes)."""
        file = self.path / "ca.crt"
        try:
            ca: bytes | None = file.read_bytes()
        except FileNotFoundError:
            ca = None
        except OSError as exc:
            raise KubernetesApiError(f"cannot read the cluster CA {file}: {exc}") from exc
        if self._context is not None and ca == self._ca:
            return self._context
        try:
            context = ssl.create_default_context(cadata=ca.decode() if ca else None)
        except (ssl.SSLError, ValueError) as exc:
            raise KubernetesApiError(f"{file} holds no usable CA certificate: {exc}") from exc
        self._ca, self._context = ca, context
        return context

    def credentials(self) -> tuple[str, ssl.SSLContext]:
        """Token and TLS context, read from the files now (blocking: run in a thread)."""
        return self.token(), self.ssl_context()


class KubernetesClient:
    """List and watch requests to one API server, authenticated as ``account``."""

    def __init__(
        self,
        base_url: str,
        account: ServiceAccount,
        *,
        request_timeout: float,
        log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
        rbac_verbs: Sequence[str] = ("list", "watch"),
    ) -> None:
        self.base_url = base_url
        self.account = account
        self.request_timeout = request_timeout
        self.rbac_verbs = tuple(rbac_verbs)
        self._log = log
        self._session: aiohttp.ClientSession | None = None
        self._warned: set[str] = set()

    async def list(self, resource: Resource, namespace: str, selector: str, *, cached: bool) -> Any:
        """One list request; the decoded JSON document. Raises KubernetesApiError."""
        params = {"labelSelector": selector}
        if cached:
            params["resourceVersion"] = "0"  # libcluster's kubernetes_use_cached_resources
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        response = await self._send("list", resource, namespace, params, timeout)
        async with response:
            try:
                body = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise self._failed("list", resource, exc) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise KubernetesApiError(
                f"the API's answer to the list of {resource.plural} is not JSON "
                f"({body[:60]!r}); is {self.base_url} the Kubernetes API server?"
            ) from exc

    @contextlib.asynccontextmanager
    async def watch(
        self,
        resource: Resource,
        namespace: str,
        selector: str,
        resource_version: str,
        *,
        timeout_seconds: int,
    ) -> AsyncIterator[WatchStream]:
        """Open a watch from ``resource_version``; yields the stream once the API said 200.

        The server ends the stream after ``timeout_seconds``; the client gives up when
        nothing (not even a bookmark) arrived for that long plus the request timeout.
        """
        params = {
            "labelSelector": selector,
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.request_timeout,
            sock_read=timeout_seconds + self.request_timeout,
        )
        response = await self._send("watch", resource, namespace, params, timeout)
        try:
            yield WatchStream(self, resource, response)
        finally:
            response.close()  # mid-stream: drop the connection, do not drain it

    async def aclose(self) -> None:
        """Close the HTTP session (and its connections)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- one request -------------------------------------------------------------------------
    async def _send(
        self,
        verb: str,
        resource: Resource,
        namespace: str,
        params: dict[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        token, context = await asyncio.to_thread(self.account.credentials)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = self.base_url + resource.path(namespace)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            response = await self._session.get(
                url, params=params, headers=headers, ssl=context, timeout=timeout
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._failed(verb, resource, exc) from exc
        self._warn(response)
        if response.status == 200:
            return response
        async with response:
            try:
                body = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                body = b""
        raise self._refused(verb, resource, namespace, response.status, body, token)

    def _refused(
        self, verb: str, resource: Resource, namespace: str, code: int, body: bytes, token: str
    ) -> KubernetesApiError:
        status = parse_status(body)
        message = status.message if status else body[:200].decode(errors="replace").strip()
        reason = status.reason if status else ""
        if code == 403:
            account = service_account_of(token, message, self.account.namespace() or namespace)
            text = explain_forbidden(
                verb=verb,
                resource=resource,
                namespace=namespace,
                account=account,
                api_message=message,
                verbs=self.rbac_verbs,
            )
        elif code == 401:
            text = (
                f"the API rejected the token in {self.account.path / 'token'} (401 "
                f"Unauthorized: {message or reason}): it expired, was revoked, or belongs "
                "to another cluster"
            )
        else:
            text = f"cannot {verb} {resource.plural} in namespace {namespace!r}: the API "
            text += f"answered {code} {reason or 'error'}: {message or '(no message)'}"
        return KubernetesApiError(text, status=code, reason=reason)

    def _failed(self, verb: str, resource: Resource, exc: BaseException) -> KubernetesApiError:
        where = f"the Kubernetes API at {self.base_url}"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            ca = self.account.path / "ca.crt"
            text = (
                f"TLS verification of {where} failed: its certificate is not signed by the "
                f"CA in {ca}, or does not name that host ({exc.certificate_error})"
            )
        elif isinstance(exc, aiohttp.ClientSSLError):
            text = f"TLS with {where} failed: {exc}"
        elif isinstance(exc, TimeoutError):
            text = f"{where} did not answer the {verb} of {resource.plural} in time"
        elif isinstance(exc, aiohttp.ClientConnectorError):
            text = f"cannot connect to {where}: {exc.os_error or exc}"
        else:
            text = f"the {verb} of {resource.plural} at {where} failed: {exc!r}"
        return KubernetesApiError(text)

    def _warn(self, response: aiohttp.ClientResponse) -> None:
        """Log each distinct ``Warning`` header once (deprecations, e.g. v1 Endpoints)."""
        for warning in response.headers.getall("Warning", ()):
            if warning not in self._warned and len(self._warned) < 64:
                self._warned.add(warning)
                self._log.info("the Kubernetes API warns: %s", warning)


class WatchStream:
    """The events of one open watch, in batches (all those one network read completed)."""

    def __init__(
        self, client: KubernetesClient, resource: Resource, response: aiohttp.ClientResponse
    ) -> None:
        self._client = client
        self._resource = resource
        self._response = response
        self._decoder = WatchDecoder()

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> list[WatchEvent]:
        while True:
            try:
                chunk = await self._response.content.readany()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise self._client._failed("watch", self._resource, exc) from exc
            if not chunk:
                raise StopAsyncIteration
            events = self._decoder.feed(chunk)
            if events:
                return events
