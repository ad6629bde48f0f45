"""The shared HTTP clients: one per destination for a session, sharing nothing between
requests but the connection (no cookie of one answer is sent with the next request), and a
TLS context built once, also from a thread while the console starts."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

from cutover.demo.loopback import Loopback
from cutover.sources import httpclient


class _CookieJarTest(BaseHTTPRequestHandler):
    """Sets a cookie on every answer and says which cookie it was sent."""

    def do_GET(self) -> None:
        sent = self.headers.get("Cookie") or ""
        body = sent.encode() or b"-"
        self.send_response(200)
        self.send_header("Set-Cookie", "session=abc; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_a_shared_client_sends_no_cookie_an_earlier_answer_set():
    server = Loopback("cookies")
    server.start(_CookieJarTest)
    clients = httpclient.Clients()
    try:
        client = clients.for_url(server.url + "/a")
        first = await client.get(server.url + "/a")
        second = await clients.for_url(server.url + "/b").get(server.url + "/b")
        assert clients.for_url(server.url + "/c") is client  # one client per destination
        assert len(clients) == 1
    finally:
        await clients.aclose()
        server.stop()
    assert first.headers["set-cookie"].startswith("session=")
    assert second.text == "-"  # nothing was kept from the first answer


def test_warming_on_a_thread_and_a_first_request_at_once_both_get_the_one_context():
    # The console builds the TLS context on a thread while it starts; a request made before
    # that ends must wait for it, not build a second one or deadlock. In a fresh process:
    # httpx not imported yet is when the two meet.
    import subprocess
    import sys

    program = (
        "import threading; from cutover.sources import httpclient; made = []; "
        "warming = httpclient.warm(); "
        "asking = threading.Thread(target=lambda: made.append(httpclient.client()), daemon=True); "
        "asking.start(); warming.join(20); asking.join(20); "
        "print(warming.is_alive(), asking.is_alive(), len(made))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["False", "False", "1"], done.stderr


class _Finder:
    """A meta path finder that finds nothing and counts what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def find_spec(self, name, path=None, target=None):
        self.asked.append(name)
        return None


async def test_a_request_made_every_second_searches_for_no_module():
    # httpcore asks on every request which async library runs it, by importing sniffio;
    # without it installed, each request searched every folder on sys.path for a module that
    # is not there (about 5 ms on the console's loop, each panel each second).
    import sys

    server = Loopback("imports")
    server.start(_CookieJarTest)
    clients = httpclient.Clients()
    finder = _Finder()
    try:
        await clients.for_url(server.url).get(server.url + "/warm")  # first use may import
        sys.meta_path.insert(0, finder)
        try:
            for n in range(5):
                await clients.for_url(server.url).get(f"{server.url}/{n}")
        finally:
            sys.meta_path.remove(finder)
    finally:
        await clients.aclose()
        server.stop()
    assert finder.asked == []
