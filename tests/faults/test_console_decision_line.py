"""The decision line never hides. Once, at ramp and full (7 gates) the gates line wrapped and
pushed the advance line off the screen, even at 160×48, and at 80×24 at every stage; now the
gates are summarised when they do not fit, still naming each gate that does not pass."""

from __future__ import annotations

from pathlib import Path

from tui import conftest
from tui.conftest import fixed_app, until, visible_text

MORE_GATES = "".join(
    f"""
  [[stages.gates]]
  id = "success_also_checked_{n}"
  query = "success"
  column = "rate"
  op = ">="
  value = 95
"""
    for n in range(6)
)


async def test_seven_gates_at_80x24_summarise_and_the_advance_line_stays(
    tmp_path: Path, monkeypatch
):
    canary_gate = '  [[stages.gates]]\n  id = "success"\n'
    text = conftest.RUNBOOK.replace(canary_gate, MORE_GATES.lstrip("\n") + "\n" + canary_gate, 1)
    monkeypatch.setattr(conftest, "RUNBOOK", text)
    app = fixed_app(tmp_path, stage="canary", rate=80.0)  # every gate fails
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "advance ✗ refused" in visible_text(app))
        lines = visible_text(app).splitlines()
        gates = next(line for line in lines if line.lstrip().startswith("gates:"))
        assert "7 ✗" in gates, gates
        assert "…" not in gates  # summarised, not cut mid-verdict
        assert any("advance ✗ refused" in line for line in lines)
