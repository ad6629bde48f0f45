"""The HTTP client behind probes, http queries and the Vercel flag: httpx imported without
its command-line tool, one TLS setup per process, and one client per destination for as long
as a console (or a command) runs, instead of one per request.

Why: importing httpx pulls its CLI's click, rich and pygments (~50 ms on every command that
sends a request), and every new client loads the CA bundle again (30-90 ms, on the console's
event loop when a probe or a query starts a client of its own each minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import http.cookiejar
    import ssl
    import types

    import httpx as httpx_types

_lock = threading.RLock()  # tls() imports httpx under it
_tls: ssl.SSLContext | None = None
_readied = threading.Event()  # _make_ready has run (whether or not it all worked)


def httpx() -> types.ModuleType:
    """The httpx module, imported on first use without `httpx._main` (its `httpx` command:
    httpx then defines the stub it uses when the CLI's extras are not installed)."""
    module = sys.modules.get("httpx")
    if module is not None:
        return module
    with _lock:
        blocked = "httpx._main" not in sys.modules
        if blocked:
            sys.modules["httpx._main"] = None  # type: ignore[assignment]
        try:
            import httpx as module
        finally:
            if blocked and sys.modules.get("httpx._main", 0) is None:
                del sys.modules["httpx._main"]
    return module


def tls() -> ssl.SSLContext:
    """One verifying TLS context for the process (httpx's default: certifi's CA bundle, or
    SSL_CERT_FILE / SSL_CERT_DIR), built once: loading the bundle is the slow part of making
    a client. Safe to call from a thread, which is where the console first calls it."""
    global _tls
    if _tls is None:
        with _lock:
            if _tls is None:
                _tls = httpx().create_ssl_context()
    return _tls


def _make_ready(*also: str) -> None:
    """Import what a first request needs and build the TLS context: httpx, the cookie jar's
    module, httpcore (httpx imports it when a client makes its transport: ~0.1 s, on the
    console's event loop when its first panel over HTTP ran), the asyncio backend httpcore
    finds through anyio at its first request (~70 ms more), and any module named in `also`.
    A failure here is said by the first request, where it is read."""
    with contextlib.suppress(Exception):
        tls()
        import http.cookiejar  # noqa: F401

        import anyio._backends._asyncio  # noqa: F401
        import httpcore  # noqa: F401
    _readied.set()
    for name in also:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def warm(*also: str) -> threading.Thread:
    """`_make_ready` on a thread of its own (loading the CA bundle lets the interpreter run
    on), so that the first request a console or a command sends does not wait for them on
    its event loop."""
    thread = threading.Thread(target=_make_ready, args=also, name="cutover-tls", daemon=True)
    thread.start()
    return thread


async def ready(*also: str) -> None:
    """Before a request on an event loop: what it needs imported, on a thread while the loop
    serves everything else (a `check` has its SQL queries out at the same time: ~0.2 s of
    imports on the loop held their answers waiting)."""
    if not _readied.is_set() or any(name not in sys.modules for name in also):
        # Also while warm()'s thread is at it: this one then waits for its imports.
        await asyncio.to_thread(_make_ready, *also)


def _no_cookies() -> http.cookiejar.CookieJar:
    # A shared client must not carry one endpoint's cookies into the next request: each
    # request stands alone, as it did with a client of its own.
    import http.cookiejar  # with urllib.request: ~13 ms, paid when a client is made

    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def client(**options: Any) -> httpx_types.AsyncClient:
    """A new AsyncClient on the shared TLS context that keeps no cookies."""
    options.setdefault("verify", tls())
    options.setdefault("cookies", _no_cookies())
    return httpx().AsyncClient(**options)


def destination(url: str) -> str:
    """What a client is shared by: scheme, host and port.

    >>> destination("https://api.render.com/v1/logs?x=1"), destination("http://[::1]:8000/a")
    ('https://api.render.com:443', 'http://[::1]:8000')
    """
    parts = urlsplit(url)
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    except ValueError:  # not a port: httpx says so when the request is made
        return f"{parts.scheme}://{parts.netloc}"
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}"


class Clients:
    """One client per destination, made on first use and kept until `aclose`. Each request
    passes its own timeout and headers, so queries and probes to one host share connections
    and nothing else."""

    def __init__(self) -> None:
        self._clients: dict[str, httpx_types.AsyncClient] = {}

    def for_url(self, url: str) -> httpx_types.AsyncClient:
        key = destination(url)
        found = self._clients.get(key)
        if found is None or found.is_closed:
            found = self._clients[key] = client()
        return found

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for each in clients:
            await each.aclose()
