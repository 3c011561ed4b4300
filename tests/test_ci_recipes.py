"""The pipeline recipes in examples/ci/ are valid for their CI systems and drive
trunksync the documented way: plan on review, apply of the saved plan, state
committed back, never two applies at once. tests/test_recipes_run.py runs them.

Both files are checked against the CI systems' own JSON schemas, vendored in
tests/schemas/ (see its README for where they come from)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from itertools import product
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
RECIPES = ["github-actions.yml", "gitlab-ci.yml"]
WORKFLOWS = [CI / "github-actions.yml", ROOT / ".github" / "workflows" / "release.yml"]
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def load(path: Path) -> Any:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads a bare `on` as true
        data["on"] = data.pop(True)
    return data


def scripts(data: Any) -> str:
    """Every shell line of every job, joined."""
    lines: list[str] = list(data.get("default", {}).get("before_script", []))
    for job in data["jobs"].values() if "jobs" in data else data.values():
        if not isinstance(job, dict):
            continue
        lines += job.get("script", [])
        lines += [step.get("run", "") for step in job.get("steps", [])]
    return "\n".join(lines)


def schema_errors(data: Any, schema_file: str) -> list[str]:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(data)
    ]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_github_workflows_match_the_github_workflow_schema(path: Path) -> None:
    assert schema_errors(load(path), "github-workflows.json") == []


def test_gitlab_recipe_matches_the_gitlab_ci_schema() -> None:
    assert schema_errors(load(CI / "gitlab-ci.yml"), "gitlab-ci.json") == []


def test_the_schemas_do_reject_a_broken_file() -> None:
    broken_workflow = {"on": "push", "jobs": {"a": {"runs-on": "x", "steps": [{"usez": "a"}]}}}
    assert schema_errors(broken_workflow, "github-workflows.json")
    assert schema_errors({"apply": {"script": "x", "needs": 3}}, "gitlab-ci.json")


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_parses_and_runs_the_reviewed_plan(name: str) -> None:
    shell = scripts(load(CI / name))
    assert "trunksync validate" in shell
    assert (
        "trunksync plan --detailed-exitcode --out trunks.plan --format markdown > plan.md" in shell
    )
    assert "trunksync plan --allow-missing-secrets --detailed-exitcode" in shell
    assert "trunksync apply trunks.plan" in shell
    assert "git add state/trunks.json" in shell
    assert "--auto-approve" not in shell  # a saved plan needs no confirmation
    assert "==0.1.0" not in shell  # not on PyPI: a pinned git URL instead
    assert 'pip install "trunksync @ git+${TRUNKSYNC_GIT_URL}@${TRUNKSYNC_COMMIT}"' in shell


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_pinned_by_a_full_commit_sha(path: Path) -> None:
    uses = [
        line.split("uses:", 1)[1].strip()
        for line in path.read_text().splitlines()
        if line.strip().startswith(("uses:", "- uses:"))
    ]
    assert uses
    for action in uses:
        assert SHA_PIN.match(action), action


def test_github_secrets_only_in_the_steps_that_read_them() -> None:
    data = load(CI / "github-actions.yml")
    assert "secrets." not in json.dumps(data.get("env", {}))
    for job_name, job in data["jobs"].items():
        assert "secrets." not in json.dumps(job.get("env", {})), job_name
        for step in job["steps"]:
            env = json.dumps(step.get("env", {}))
            run = step.get("run", "")
            if "TRUNKSYNC_API_KEY" in env:  # to apply, or to sign a saved plan
                assert "trunksync apply" in run or "--out" in run, step
            if "TWILIO_" in env:
                assert "trunksync plan" in run or "trunksync apply" in run, step
            assert "GITHUB_STEP_SUMMARY" not in env  # GitHub forbids overriding GITHUB_*


def test_github_writes_the_pr_summary_once_and_caches_pip() -> None:
    data = load(CI / "github-actions.yml")
    pr_steps = data["jobs"]["pr-plan"]["steps"]
    runs = [step.get("run", "") for step in pr_steps]
    assert sum(run.count("trunksync plan") for run in runs) == 1  # each run appends a summary
    for job in data["jobs"].values():
        setup = next(step for step in job["steps"] if "setup-python" in step.get("uses", ""))
        assert setup["with"]["cache"] == "pip"


def test_github_workflow_serializes_applies_and_commits_state_even_on_failure() -> None:
    data = load(CI / "github-actions.yml")
    assert set(data["on"]) >= {"pull_request", "push"}
    assert "trunksync-state" in data["concurrency"]["group"]
    assert data["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    apply = data["jobs"]["apply"]
    assert apply["needs"] == "plan"
    assert apply["permissions"] == {"contents": "write"}
    commit = next(step for step in apply["steps"] if "git push" in step.get("run", ""))
    assert commit["if"].startswith("always()")
    text = (CI / "github-actions.yml").read_text()
    assert "github-actions-postgres.yml" in text and "protected main" in text.lower()


def test_gitlab_pipeline_serializes_plan_and_apply_with_a_manual_gate() -> None:
    data = load(CI / "gitlab-ci.yml")
    assert data["plan"]["resource_group"] == data["apply"]["resource_group"] == "trunksync-state"
    assert data["apply"]["needs"] == ["plan"]
    assert all(rule["when"] == "manual" for rule in data["apply"]["rules"])
    assert "trunks.plan" in data["plan"]["artifacts"]["paths"]
    assert data["apply"]["script"][-1] == 'exit "$status"'
    assert data["validate"]["artifacts"]["reports"]["codequality"] == "gl-code-quality.json"


# --- GitLab rules: every pipeline GitLab could be asked to create is valid ---

SOURCES = ["push", "web", "merge_request_event", "schedule"]
BRANCHES = ["main", "feature"]
CHANGES = [frozenset(), frozenset({"trunks.yaml"}), frozenset({"README.md"})]


def condition_holds(expression: str, variables: dict[str, str]) -> bool:
    """The small subset of GitLab's `rules:if` the recipe uses: ==, &&, ||, ( )."""
    python = re.sub(r"\$(\w+)", lambda match: repr(variables.get(match[1], "")), expression)
    python = python.replace("&&", " and ").replace("||", " or ")
    # Nothing but string literals, ==/!=, and/or and parentheses may remain.
    assert re.fullmatch(r"(\s|'[^']*'|\"[^\"]*\"|==|!=|\band\b|\bor\b|[()])*", python), expression
    return bool(eval(python, {"__builtins__": {}}))


def job_included(job: dict[str, Any], variables: dict[str, str], changed: frozenset[str]) -> bool:
    for rule in job.get("rules", [{}]):
        if "if" in rule and not condition_holds(rule["if"], variables):
            continue
        # GitLab evaluates `changes` as true outside push/MR pipelines (web, schedule).
        source = variables["CI_PIPELINE_SOURCE"]
        compares_changes = "changes" in rule and source in ("push", "merge_request_event")
        if compares_changes and not changed & set(rule["changes"]):
            continue
        return rule.get("when", "on_success") != "never"
    return False


def resolved_jobs(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for name, job in data.items():
        if name.startswith(".") or not isinstance(job, dict) or "script" not in job:
            continue
        merged = dict(data[job["extends"]]) if "extends" in job else {}
        merged.update(job)
        jobs[name] = merged
    return jobs


@pytest.mark.parametrize(("source", "branch", "changed"), list(product(SOURCES, BRANCHES, CHANGES)))
def test_gitlab_every_pipeline_has_the_jobs_its_needs_name(
    source: str, branch: str, changed: frozenset[str]
) -> None:
    variables = {"CI_PIPELINE_SOURCE": source, "CI_DEFAULT_BRANCH": "main"}
    if source != "merge_request_event":
        variables["CI_COMMIT_BRANCH"] = branch
    jobs = resolved_jobs(load(CI / "gitlab-ci.yml"))
    included = {name for name, job in jobs.items() if job_included(job, variables, changed)}
    for name in included:
        for need in jobs[name].get("needs", []):
            optional = isinstance(need, dict) and need.get("optional", False)
            needed = need["job"] if isinstance(need, dict) else need
            assert optional or needed in included, f"{name} needs {needed}, left out"


def test_gitlab_rule_evaluation_finds_the_old_bug() -> None:
    """The check above fails for the shape issue 10 reported (apply without plan's changes)."""
    data = load(CI / "gitlab-ci.yml")
    data["apply"]["rules"] = [
        {"if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"'}
    ]
    jobs = resolved_jobs(data)
    variables = {
        "CI_PIPELINE_SOURCE": "push",
        "CI_DEFAULT_BRANCH": "main",
        "CI_COMMIT_BRANCH": "main",
    }
    readme_only = frozenset({"README.md"})
    assert job_included(jobs["apply"], variables, readme_only)
    assert not job_included(jobs["plan"], variables, readme_only)


def test_gitlab_secrets_never_needed_by_merge_request_jobs() -> None:
    data = load(CI / "gitlab-ci.yml")
    for name in ("validate", "mr-plan"):
        shell = "\n".join(data[name]["script"])
        assert "TRUNKSYNC_API_KEY" not in shell and "TRUNKSYNC_GITLAB_TOKEN" not in shell
        assert "--allow-missing-secrets" in shell
    # ...and only there: on the default branch, every secret must be set.
    assert "${CI_MERGE_REQUEST_IID:+--allow-missing-secrets}" in data["validate"]["script"][0]


def shell_steps() -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    for path in WORKFLOWS:
        for job_name, job in load(path)["jobs"].items():
            steps += [
                (f"{path.name} {job_name} {index}", step["run"])
                for index, step in enumerate(job["steps"])
                if "run" in step
            ]
    gitlab = load(CI / "gitlab-ci.yml")
    before = gitlab["default"]["before_script"]
    for name, job in gitlab.items():
        if isinstance(job, dict) and "script" in job:
            steps.append((f"gitlab-ci.yml {name}", "\n".join([*before, *job["script"]])))
    return steps


@pytest.mark.parametrize(("where", "script"), shell_steps(), ids=[w for w, _ in shell_steps()])
def test_every_shell_step_passes_shellcheck(where: str, script: str, tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    target = tmp_path / "step.sh"
    target.write_text("#!/bin/bash\n" + script)
    done = subprocess.run(
        [shellcheck, "--severity=style", str(target)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout
