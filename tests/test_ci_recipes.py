"""The pipeline recipes in examples/ci/ are valid YAML and drive trunksync the
documented way: plan on review, apply of the saved plan, state committed back,
never two applies at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

CI = Path(__file__).resolve().parent.parent / "examples" / "ci"
RECIPES = ["github-actions.yml", "gitlab-ci.yml"]


def load(name: str) -> Any:
    return yaml.safe_load((CI / name).read_text())


def scripts(data: Any) -> str:
    """Every shell line of every job, joined."""
    lines: list[str] = []
    for job in data["jobs"].values() if "jobs" in data else data.values():
        if not isinstance(job, dict):
            continue
        lines += job.get("script", [])
        lines += [step.get("run", "") for step in job.get("steps", [])]
    return "\n".join(lines)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_parses_and_runs_the_reviewed_plan(name: str) -> None:
    data = load(name)
    assert isinstance(data, dict)
    shell = scripts(data)
    assert "trunksync validate" in shell
    assert "trunksync plan --detailed-exitcode --out trunks.plan" in shell
    assert "trunksync plan --format markdown > plan.md" in shell
    assert "trunksync apply trunks.plan" in shell
    assert "git add state/trunks.json" in shell
    assert "--auto-approve" not in shell  # a saved plan needs no confirmation


def test_github_workflow_serializes_applies_and_commits_state_even_on_failure() -> None:
    data = load("github-actions.yml")
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) >= {"pull_request", "push"}
    assert "trunksync-state" in data["concurrency"]["group"]
    assert data["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    apply = data["jobs"]["apply"]
    assert apply["needs"] == "plan"
    assert apply["permissions"] == {"contents": "write"}
    commit = next(step for step in apply["steps"] if "git push" in step.get("run", ""))
    assert commit["if"].startswith("always()")


def test_gitlab_pipeline_serializes_plan_and_apply_with_a_manual_gate() -> None:
    data = load("gitlab-ci.yml")
    assert data["plan"]["resource_group"] == data["apply"]["resource_group"] == "trunksync-state"
    assert data["apply"]["needs"] == ["plan"]
    assert data["apply"]["rules"][0]["when"] == "manual"
    assert "trunks.plan" in data["plan"]["artifacts"]["paths"]
    assert data["apply"]["script"][-1] == 'exit "$status"'
