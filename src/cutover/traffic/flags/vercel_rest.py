"""Vercel's REST API as the flag needs it: one request with retries where a retry is safe,
Vercel's errors turned into what the operator can act on, and the token from the
environment or from a file re-read at every request (so it can be fixed while a rollback
waits), never shown."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from cutover.runbook.durations import humanize
from cutover.sources import httpclient
from cutover.traffic.flags.base import FlagError

httpx = httpclient.httpx()  # without its command-line tool (see cutover.sources.httpclient)

DEFAULT_API_URL = "https://api.vercel.com"


class VercelAPI:
    """One project's API client. `token` comes from the environment variable `token_env`
    names; with `token_file`, the file's content is the token, read afresh every time."""

    def __init__(
        self,
        *,
        project: str,
        token: str = "",
        token_env: str = "VERCEL_TOKEN",
        token_file: Path | None = None,
        team_id: str | None = None,
        base_url: str = DEFAULT_API_URL,
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        retry_base_s: float = 0.5,
        max_retry_after_s: float = 60.0,
    ):
        self.project = project
        self.team_id = team_id
        self.token_env = token_env
        self.token_file = token_file
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.retry_base_s = retry_base_s
        self.max_retry_after_s = max_retry_after_s
        self._token = token
        # Every token this client has sent: one fixed in the file mid-rollback must stay
        # out of what is said as much as the one it replaced.
        self._seen: set[str] = {token} if token else set()
        self._client = httpclient.client(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": "cutover"},
            timeout=timeout_s,
        )

    # -- the token --------------------------------------------------------------------------

    def token(self) -> str:
        """The token to send now: the file's content when there is a file (read every
        time: an operator may be fixing it), else the environment's."""
        if self.token_file is None:
            return self._token
        try:
            text = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise FlagError(
                f"cannot read the Vercel token file {self.token_file} ({exc.strerror}): "
                "write a Vercel token with access to project "
                f"{self.project} there (readable by you only); it is re-read at every attempt",
                permanent=True,
            ) from None
        if not text:
            raise FlagError(
                f"the Vercel token file {self.token_file} is empty: write a Vercel token with "
                f"access to project {self.project} there; it is re-read at every attempt",
                permanent=True,
            )
        self._seen.add(text)
        return text

    def token_mark(self) -> str | None:
        """Something that changes when the token does, where it can change while this runs
        (a token file); None when it cannot (an environment variable of this process)."""
        if self.token_file is None:
            return None
        try:
            data = self.token_file.read_bytes()
        except OSError:
            return "missing"
        return hashlib.sha256(data.strip()).hexdigest()

    def redact(self, text: str) -> str:
        for token in sorted(self._seen, key=len, reverse=True):
            if token:
                text = text.replace(token, "[token]")
        return text

    # -- requests ---------------------------------------------------------------------------

    def error(self, message: str, *, retryable: bool, **extra: Any) -> FlagError:
        return FlagError(self.redact(message), retryable=retryable, **extra)

    def _refused(self, status: int) -> str:
        """What to fix when Vercel refuses the token or cannot find what the runbook names."""
        if status in (401, 403):
            if self.token_file is not None:
                where = f"the token in {self.token_file}"
                fix = (
                    f"write a valid token with access to project {self.project} (and team_id) "
                    "there; a rollback waiting on it goes on once the file changes"
                )
            else:
                where = f"the token in ${self.token_env}"
                fix = (
                    f"export a valid token with access to project {self.project} (and "
                    "team_id) and run the command again; or name a [flag] token_file, "
                    "which a waiting rollback re-reads"
                )
            return f"Vercel refuses {where}: {fix}"
        return (
            f"check [flag] project ({self.project}) and team_id in the runbook; nothing "
            "changes by retrying"
        )

    def _hint(self, status: int) -> str:
        if status in (401, 403, 404):
            return self._refused(status)
        if status == 429:
            return "Vercel is rate limiting this token; wait, then try again"
        if status >= 500:
            return "Vercel is failing: check vercel-status.com and try again"
        return "check the request against the runbook's [flag]"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if self.team_id:
            query["teamId"] = self.team_id
        where = f"{method} {path}"
        last: FlagError | None = None
        for attempt in range(1, self.max_attempts + 1):
            delay = self.retry_base_s * 2 ** (attempt - 1)
            headers = {"Authorization": f"Bearer {self.token()}"}
            try:
                resp = await self._client.request(
                    method, path, params=query, json=body, headers=headers
                )
            except httpx.TimeoutException:
                last = self.error(
                    f"Vercel {where}: no answer within {self.timeout_s:g} s", retryable=True
                )
                # A POST that timed out may have been carried out: never send it twice.
                if not idempotent:
                    raise self.error(
                        f"{last}; a deployment may have started: check the Vercel dashboard "
                        "before trying again",
                        retryable=True,
                    ) from None
            except httpx.TransportError as exc:
                last = self.error(
                    f"Vercel {where}: cannot connect ({type(exc).__name__}: {exc})",
                    retryable=True,
                )
                if not idempotent and not isinstance(exc, httpx.ConnectError):
                    raise last from None
            else:
                if resp.is_success:
                    if not resp.content:
                        return {}
                    try:
                        return resp.json()
                    except ValueError:
                        raise self.error(
                            f"Vercel {where}: HTTP {resp.status_code} but the body is not JSON; "
                            "check VERCEL_API_URL points at the Vercel API",
                            retryable=False,
                        ) from None
                code, message = _error_fields(resp)
                status = resp.status_code
                retryable = status == 429 or status >= 500
                last = self.error(
                    f"Vercel {where}: HTTP {status} {_status_word(status)}"
                    f" ({code}: {message}); {self._hint(status)}",
                    retryable=retryable,
                    permanent=status in (401, 403, 404),
                    status=status,
                )
                if not retryable or (status >= 500 and not idempotent):
                    raise last
                if status == 429:
                    after = _retry_after(resp)
                    if after is not None:
                        if after > self.max_retry_after_s:
                            raise self.error(
                                f"Vercel {where}: HTTP 429 ({code}: {message}); Vercel asks "
                                f"to wait {humanize(after)} before trying again",
                                retryable=True,
                                status=429,
                            )
                        delay = max(delay, after)
            if attempt < self.max_attempts:
                await asyncio.sleep(delay)
        assert last is not None
        raise self.error(
            f"{last} (gave up after {self.max_attempts} attempts)",
            retryable=True,
            status=last.status,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def _error_fields(resp: httpx.Response) -> tuple[str, str]:
    try:
        error = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or "no_code")
    message = str(error.get("message") or resp.reason_phrase or "no message")
    return code, message[:200]


def _status_word(status: int) -> str:
    words = {
        401: "unauthorized",
        402: "payment required",
        403: "forbidden",
        404: "not found",
        409: "conflict",
        429: "rate limited",
    }
    return words.get(status, "server error" if status >= 500 else "refused")


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
