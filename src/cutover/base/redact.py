"""The one redaction rule: every secret value the runbook names is cut out of every text
that reaches the screen, the journal, a log or an export.

Secrets live in environment variables the runbook names (the DSN's, the platform token's,
a command flag's `env`); their values are known only at run time, so a `Redactor` is built
per session from the runbook and the environment, and every output path passes through it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
# Values shorter than this would cut ordinary words and digits out of every message; such
# a secret is too weak to protect by redaction anyway.
MIN_SECRET_LEN = 4

# user:password@ in any URL-shaped text, whether or not we know the password.
# Bounded and anchored at a word's start: an unbounded `\w+://` retried at every position
# of a long word is quadratic (40,000 characters took 17 s), and every journal field and
# every line of output passes through here.
_USERINFO = re.compile(r"(?<![\w+.-])([A-Za-z][\w+.-]{0,31}://[^:/@\s]{0,256}):[^@\s]{0,1024}@")
# A bearer token or basic credentials echoed by a tool (curl -v, set -x).
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s{0,8}(?:bearer|basic|token)\s{1,8})\S+")


def _quoted(value: str) -> set[str]:
    """How a tool may print a value it was given: as is, URL-encoded or decoded, inside a
    JSON string (a journal line, --json), or quoted by `set -x` ('it'\\''s')."""
    return {
        value,
        quote(value, safe=""),
        unquote(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        value.replace("'", "'\\''"),
    }


def _forms(value: str) -> set[str]:
    """A secret as it may appear; a DSN adds its password, in each of those forms.

    >>> sorted(_forms('pa"ss'))
    ['pa"ss', 'pa%22ss', 'pa\\\\"ss']
    """
    forms = _quoted(value)
    try:
        password = urlsplit(value).password
    except ValueError:  # a malformed DSN (a bad IPv6 host): still hide the whole value
        password = None
    if password:
        forms |= _quoted(password) | _quoted(unquote(password))
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


def mask_url_passwords(text: str) -> str:
    """Any `scheme://user:password@` in `text` with the password masked.

    >>> mask_url_passwords("postgresql://app:s3cret@db:5432/x failed")
    'postgresql://app:***@db:5432/x failed'
    """
    return _USERINFO.sub(rf"\1:{MASK}@", text)


class Redactor:
    """Callable: text with every known secret value and any URL password replaced."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for value in secrets:
            if value and value.strip():
                forms |= _forms(value.strip())
        # Longest first, so a DSN is replaced whole before its password is looked for.
        self._secrets = tuple(sorted(forms, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """
        >>> r = Redactor(["postgresql://app:s3cr%40t@db:5432/x", "vcp_abcdef"])
        >>> r("connect postgresql://app:s3cr%40t@db:5432/x failed")
        'connect *** failed'
        >>> r("auth failed for s3cr@t; token vcp_abcdef")
        'auth failed for ***; token ***'
        >>> Redactor()("https://u:pw@host/x and Authorization: Bearer abc.def")
        'https://u:***@host/x and Authorization: Bearer ***'
        """
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _USERINFO.sub(rf"\1:{MASK}@", text)
        return _AUTH_HEADER.sub(rf"\1{MASK}", text)

    @property
    def empty(self) -> bool:
        return not self._secrets


# The journal's HMAC key (record/journal.py): a secret like any token.
JOURNAL_KEY_ENV = "CUTOVER_JOURNAL_KEY"


def secret_names(runbook: object) -> list[str]:
    """The environment variables a runbook names as holding secrets."""
    names: list[str] = []
    database = getattr(runbook, "database", None)
    if database is not None:
        names.append(database.dsn_env)
    store = getattr(runbook, "store", None)
    if store is not None and store.kind == "postgres":
        names.append(store.dsn_env)  # team mode's writable role
    flag = getattr(runbook, "flag", None)
    if flag is not None:
        if flag.kind == "vercel":
            names.append(flag.token_env)
        names.extend(getattr(flag, "env", ()) or ())
    for source in [
        *(getattr(runbook, "queries", None) or {}).values(),
        *(getattr(runbook, "probes", None) or {}).values(),
    ]:
        for template in (getattr(source, "headers", None) or {}).values():
            names.extend(_names_in(template))
    for notify in getattr(runbook, "notify", ()) or ():
        names.append(notify.url_env)
    names.append(JOURNAL_KEY_ENV)
    return [n for n in names if n]


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def _names_in(template: str) -> list[str]:
    """The variables a header's value is made of: every ${NAME} in it, or the bare name.

    >>> _names_in("Bearer ${RENDER_API_KEY}"), _names_in("RLM_TOKEN")
    (['RENDER_API_KEY'], ['RLM_TOKEN'])
    """
    return _REFERENCE.findall(template) or [template]


def for_runbook(runbook: object, environ: Mapping[str, str]) -> Redactor:
    """The redactor of one session: the values of every secret variable the runbook names,
    and the token in the flag's token_file as it reads now (the flag itself also hides any
    token it reads from there later)."""
    values = [environ.get(name, "") for name in secret_names(runbook)]
    token_file = getattr(getattr(runbook, "flag", None), "token_file", None)
    if token_file is not None:
        # Not there yet: the flag says so when it needs it.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            values.append(token_file.read_text(encoding="utf-8"))
    return Redactor(values)
