"""Templates in the runbook's texts (URLs, headers): ${NAME} and ${NAME:-default}, judged for
their form when the runbook loads and expanded from the environment when a source is read."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, environ: Mapping[str, str] = os.environ) -> str:
    """Expand ${NAME} and ${NAME:-default} (the default also covers an empty value, as in sh).

    >>> expand_env("http://${HOST}:${PORT:-8000}/health", {"HOST": "rlm"})
    'http://rlm:8000/health'
    >>> expand_env("${TOKEN}", {})
    Traceback (most recent call last):
    ...
    ValueError: environment variable TOKEN is not set (and ${TOKEN} has no :-default)
    """

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            raise ValueError(
                f"environment variable {name} is not set (and ${{{name}}} has no :-default)"
            )
        return value

    expanded = VARIABLE.sub(substitute, text)
    # Look for leftovers in the template, not in the result: a value may contain "${".
    leftover = VARIABLE.sub("", text)
    if "${" in leftover:
        bad = leftover[leftover.index("${") :].split("}")[0][:40]
        raise ValueError(
            f"malformed variable reference {bad!r}: use ${{NAME}} or ${{NAME:-default}}"
        )
    return expanded


def template_problem(text: str) -> str | None:
    """Why `text` cannot be expanded whatever the environment holds, or None.

    >>> template_problem("${RLM_URL:-http://localhost:8000}/health") is None
    True
    >>> template_problem("Bearer ${TOKEN")
    "malformed variable reference '${TOKEN': use ${NAME} or ${NAME:-default}"
    """
    try:
        expand_env(text, _AnyValue())
    except ValueError as exc:
        return str(exc)
    return None


class _AnyValue(dict):
    """An environment in which every variable is set: only the template's form is judged."""

    def get(self, key: object, default: object = None) -> str:
        return "x"
