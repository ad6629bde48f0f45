"""The file and command flags, against real files and real shell commands."""

from __future__ import annotations

import doctest
import os
import shlex
import time
from pathlib import Path

import pytest

from cutover.traffic.flags import CommandFlag, FileFlag, FlagError


async def test_a_file_flag_round_trips(tmp_path: Path):
    flag = FileFlag(tmp_path / "flag" / "percent")
    assert (await flag.read()).percent is None  # not there yet: unset, not an error
    lines: list[str] = []
    state = await flag.set(10, lines.append)
    assert (state.percent, state.raw, state.in_effect) == (10, "10", True)
    assert (tmp_path / "flag" / "percent").read_text() == "10\n"
    assert lines == ["write percent=10", "read back 10"]
    assert (await flag.set(0)).percent == 0


async def test_a_file_flag_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path):
    path = tmp_path / "percent"
    path.write_text("10\n")
    before = os.stat(path).st_ino
    await FileFlag(path).set(50)
    # A new inode renamed over the old one: a reader holding the old file saw "10" whole.
    assert os.stat(path).st_ino != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["percent"]


async def test_a_file_flag_reports_what_is_stored_when_it_is_not_a_number(tmp_path: Path):
    path = tmp_path / "percent"
    path.write_text("fifty\n")
    state = await FileFlag(path).read()
    assert state.percent is None and state.raw == "fifty" and not state.in_effect
    assert "not a whole number" in state.detail
    path.write_text("150")
    state = await FileFlag(path).read()
    assert state.percent == 100 and "clamps it to 100" in state.detail


async def test_a_file_flag_whose_folder_cannot_exist_says_so(tmp_path: Path):
    (tmp_path / "flag").write_text("a file where the folder should be")
    with pytest.raises(FlagError, match="cannot write flag file") as caught:
        await FileFlag(tmp_path / "flag" / "percent").set(10)
    assert "writable" in str(caught.value)


def command_flag(store: Path, timeout_s: float = 5.0) -> CommandFlag:
    where = shlex.quote(str(store))
    return CommandFlag(
        get=f"cat {where}",
        set=f"printf '%s\\n' {{percent}} > {where}.tmp && mv {where}.tmp {where}",
        timeout_s=timeout_s,
    )


async def test_a_command_flag_round_trips_through_real_shell_commands(tmp_path: Path):
    store = tmp_path / "percent"
    store.write_text("0\n")
    flag = command_flag(store)
    assert (await flag.read()).percent == 0
    lines: list[str] = []
    state = await flag.set(50, lines.append)
    assert (state.percent, state.raw) == (50, "50")
    assert store.read_text() == "50\n"
    assert lines == ["run set 50", "read back 50"]


async def test_a_command_that_hangs_is_killed_at_the_timeout(tmp_path: Path):
    flag = CommandFlag(get="sleep 30; echo 10", set="true", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(FlagError, match=r"timed out after 0\.3 s") as caught:
        await flag.read()
    assert caught.value.retryable is True
    assert time.monotonic() - started < 5


async def test_a_failing_set_command_shows_its_last_stderr_lines(tmp_path: Path):
    flag = CommandFlag(
        get="echo 0",
        set="echo one >&2; echo two >&2; echo 'permission denied for {percent}' >&2; exit 3",
    )
    with pytest.raises(FlagError) as caught:
        await flag.set(10)
    message = str(caught.value)
    assert "exited 3" in message and "permission denied for 10" in message
    assert caught.value.retryable is False


async def test_a_set_that_does_not_stick_is_caught_by_the_readback(tmp_path: Path):
    flag = CommandFlag(get="echo 0", set="true")
    with pytest.raises(FlagError, match="reads back '0'"):
        await flag.set(10)


async def test_a_failing_get_command_is_an_error_not_a_zero():
    with pytest.raises(FlagError, match="exited 1"):
        await CommandFlag(get="echo nope >&2; exit 1", set="true").read()


async def test_a_failing_command_never_shows_the_secret_its_variables_hold(tmp_path: Path):
    secret = "s3cr3t-deploy-key-42"
    env = {**os.environ, "DEPLOY_KEY": secret}
    # the command echoes its secret to stderr, as `curl -v` echoes an Authorization header
    flag = CommandFlag(
        get='echo "auth with $DEPLOY_KEY" >&2; exit 3',
        set='echo "auth with ${DEPLOY_KEY}" >&2; exit 4 # {percent}',
        environ=env,
        env=["DEPLOY_KEY"],  # listed in [flag] env: given to the commands, hidden in what they say
    )
    for attempt in (flag.read(), flag.set(10)):
        with pytest.raises(FlagError) as failed:
            await attempt
        assert secret not in str(failed.value)
        assert "auth with ***" in str(failed.value)


async def test_a_command_runs_with_the_safe_base_and_the_listed_variables_only(tmp_path: Path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "LC_TIME": "C",
        "TZ": "UTC",
        "USER": "ops",
        "KUBECONFIG": "/etc/kube/config",
        "CUTOVER_DATABASE_URL": "postgresql://app:pw-not-for-the-flag@db/x",
        "VERCEL_TOKEN": "vcp_not-for-the-flag",
    }
    seen_file = tmp_path / "seen"
    flag = CommandFlag(
        get=f"env > {shlex.quote(str(seen_file))}; echo 10",
        set="true",
        environ=env,
        env=["KUBECONFIG", "NOT_SET_ANYWHERE"],
    )
    assert (await flag.read()).percent == 10
    seen = dict(line.split("=", 1) for line in seen_file.read_text().splitlines())
    seen.pop("PWD", None)  # the shell's own
    seen.pop("SHLVL", None)
    seen.pop("_", None)
    assert set(seen) == {"PATH", "HOME", "LANG", "LC_TIME", "TZ", "USER", "KUBECONFIG"}


async def test_a_failing_command_that_uses_an_unlisted_variable_says_to_list_it():
    flag = CommandFlag(
        get='test -n "$KUBECONFIG" || { echo "no kubeconfig" >&2; exit 3; }; echo 0',
        set="true",
        environ={**os.environ, "KUBECONFIG": "/etc/kube/config"},
    )
    with pytest.raises(FlagError) as caught:
        await flag.read()
    assert "no kubeconfig" in str(caught.value)
    assert "$KUBECONFIG, which is set here but not passed on: add it to [flag] env" in str(
        caught.value
    )


def test_the_command_flag_does_what_its_doctests_say():
    from cutover.traffic.flags import command

    outcome = doctest.testmod(command)
    assert outcome.attempted > 0 and outcome.failed == 0
