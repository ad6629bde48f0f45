"""`[flag] env` names the variables a command flag's commands may see: anything but a list
of variable names is refused at its line:col, before a command ever runs without them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutover.base import redact
from cutover.runbook import loader as runbook
from cutover.runbook.problems import ProblemsFound

RUNBOOK = """\
version = 1
title = "t"

[flag]
kind = "{kind}"
get = "cat percent"
set = "echo {{percent}} > percent"
project = "p"
key = "K"
{env}

[queries.q]
file = "q.sql"

[[stages]]
id = "zero"
percent = 0
"""


def load(tmp_path: Path, env: str, kind: str = "command"):
    (tmp_path / "q.sql").write_text("-- One\nSELECT 1 AS one;\n")
    text = RUNBOOK.format(kind=kind, env=env)
    if kind == "command":
        text = text.replace('project = "p"\nkey = "K"\n', "")
    else:
        text = text.replace('get = "cat percent"\nset = "echo {percent} > percent"\n', "")
    path = tmp_path / "runbook.toml"
    path.write_text(text)
    return runbook.load(path)


def problems(tmp_path: Path, env: str, kind: str = "command") -> list[str]:
    with pytest.raises(ProblemsFound) as caught:
        load(tmp_path, env, kind)
    return [str(p) for p in caught.value.problems]


def test_the_listed_variables_are_read_and_named_as_secrets(tmp_path: Path):
    book = load(tmp_path, 'env = ["KUBECONFIG", "DEPLOY_KEY", "KUBECONFIG"]')
    assert book.flag.env == ("KUBECONFIG", "DEPLOY_KEY")
    assert {"KUBECONFIG", "DEPLOY_KEY"} <= set(redact.secret_names(book))


def test_env_as_one_string_is_refused_at_its_value(tmp_path: Path):
    (problem,) = problems(tmp_path, 'env = "KUBECONFIG"')
    assert problem.startswith(f"{tmp_path / 'runbook.toml'}:8:7:")
    assert "env must be an array" in problem


def test_a_name_that_is_no_variable_is_refused(tmp_path: Path):
    found = problems(tmp_path, 'env = ["KUBE CONFIG", 3, "$TOKEN"]')
    assert len(found) == 3
    assert [p.split(": ", 1)[0].split(":")[-2:] for p in found] == [
        ["8", "8"],
        ["8", "23"],
        ["8", "26"],
    ]
    assert all("environment variable names" in p for p in found)
    assert "'KUBE CONFIG'" in found[0] and "3" in found[1] and "'$TOKEN'" in found[2]


def test_env_on_a_vercel_flag_is_an_unknown_key(tmp_path: Path):
    (problem,) = problems(tmp_path, 'env = ["KUBECONFIG"]', kind="vercel")
    assert "unknown key 'env'" in problem
