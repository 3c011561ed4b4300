"""The PostgreSQL CI recipe: the reviewed-plan flow, the state in the database,
nothing pushed back to git, and the password only ever in libpq's PGPASSWORD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RECIPE = Path(__file__).resolve().parent.parent / "examples" / "ci" / "github-actions-postgres.yml"


def steps_run(data: Any) -> str:
    return "\n".join(
        step.get("run", "") for job in data["jobs"].values() for step in job.get("steps", [])
    )


def test_postgres_recipe_applies_the_reviewed_plan_without_committing_state() -> None:
    text = RECIPE.read_text()
    data = yaml.safe_load(text)
    shell = steps_run(data)
    assert "trunksync plan --detailed-exitcode --out trunks.plan" in shell
    assert "trunksync apply trunks.plan --lock-timeout" in shell
    assert "--auto-approve" not in shell
    assert "git push" not in shell and "git add" not in shell
    assert data["permissions"] == {"contents": "read"}
    assert data["jobs"]["apply"]["permissions"] == {"contents": "read"}
    assert data["env"]["TRUNKSYNC_STATE"] == "${{ vars.TRUNKSYNC_STATE }}"
    assert "secrets." not in str(data["env"])  # secrets only in the steps that need them
    apply_step = next(
        s for s in data["jobs"]["apply"]["steps"] if "apply trunks.plan" in s.get("run", "")
    )
    assert apply_step["env"]["PGPASSWORD"] == "${{ secrets.PGPASSWORD }}"
    uses = [s["uses"] for job in data["jobs"].values() for s in job["steps"] if "uses" in s]
    assert uses and all(len(u.split("@", 1)[1]) == 40 for u in uses)  # pinned by commit SHA
    assert "GITHUB_STEP_SUMMARY:" not in text  # GitHub forbids overriding GITHUB_*
    installs = [line for line in shell.splitlines() if "pip install" in line]
    assert installs and all("trunksync[postgres]" in line for line in installs)
