"""Where the clients connect and how: the server URL and API key (arguments, else the
`GANSERVE_URL` and `GANSERVE_API_KEY` environment variables, else a local server without a
key), the timeout of one request and the retry policy."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import httpx

from ganserve.client.retry import RetryPolicy, policy_of

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "GANSERVE_URL"
KEY_VARIABLE = "GANSERVE_API_KEY"
MIN_STREAM_READ_S = 60.0  # an event stream is quiet between keep-alives (15 s by default)


def _user_agent() -> str:
    try:
        version = metadata.version("ganserve")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"ganserve-client/{version}"


@dataclass(frozen=True)
class ClientConfig:
    """A client's settings, resolved."""

    url: str
    api_key: str | None
    timeout: float
    policy: RetryPolicy

    @classmethod
    def resolve(
        cls,
        url: str | None,
        api_key: str | None,
        timeout: float,
        retries: int | RetryPolicy,
    ) -> ClientConfig:
        url = (url or os.environ.get(URL_VARIABLE) or DEFAULT_URL).rstrip("/")
        if httpx.URL(url).scheme not in ("http", "https"):
            raise ValueError(f"The server URL must start with http:// or https://, not {url!r}.")
        api_key = api_key if api_key is not None else os.environ.get(KEY_VARIABLE) or None
        if timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        return cls(url, api_key, float(timeout), policy_of(retries))

    def httpx_options(self) -> dict[str, Any]:
        """The keyword arguments of the `httpx.Client` or `httpx.AsyncClient`."""
        headers = {"User-Agent": _user_agent()}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        # A result may be answered with a 307 to a presigned URL of the object store
        # (GANSERVE_RESULT_LINKS=presigned): followed, and httpx drops the Authorization header
        # when a redirect leaves the server's origin, so the key never reaches the store.
        return {
            "base_url": self.url,
            "headers": headers,
            "timeout": self.timeout,
            "follow_redirects": True,
        }

    @property
    def stream_timeout(self) -> httpx.Timeout:
        """The timeout of an event stream: reads wait past the server's keep-alive interval."""
        return httpx.Timeout(self.timeout, read=max(self.timeout, MIN_STREAM_READ_S))


class ClientBase:
    """What both clients share: their settings (see the module doc), the retry policy, the URL,
    and the httpx client that `_connect` makes (`transport` replaces httpx's, as in tests)."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int | RetryPolicy = 3,
        *,
        transport: Any = None,
    ) -> None:
        self._config = ClientConfig.resolve(url, api_key, timeout, retries)
        self._policy = self._config.policy
        self._http = self._connect(self._config.httpx_options(), transport)

    def _connect(self, options: dict[str, Any], transport: Any) -> Any:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._config.url
