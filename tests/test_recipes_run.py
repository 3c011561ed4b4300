"""Run the CI recipes of examples/ci/ the way their runners would (issue 10 item 5).

Each job's shell steps (`run:` / `before_script:` + `script:`) run in order in
bash, with the environment a runner gives (GITHUB_ACTIONS, GITHUB_STEP_SUMMARY,
GITHUB_OUTPUT, CI_*, the secrets the recipe maps), in a clone of a local "origin"
repository, against the emulator. What is not shell is simulated: checkout is a
clone, artifacts are copied, setup-python does nothing. `pip`, `gh` and `curl`
are fakes that record their arguments, so `trunksync` comes from this venv
instead of the install step, and nothing leaves loopback. Then each test checks
what the steps claim: the summary written once, the plan saved and applied, the
state pushed back, nothing applied twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, SENTINELS, TWO_TRUNKS, write

pytestmark = pytest.mark.e2e

CI = Path(__file__).resolve().parent.parent / "examples" / "ci"
VENV_BIN = Path(sys.executable).parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # what the user pins; pip is a fake
GIT_URL = "https://git.example.test/trunksync.git"
SECRETS = {**SECRET_ENV, "TRUNKSYNC_API_KEY": API_KEY}
GITLAB_PUSH_URL = "https://oauth2:glpat-test@gitlab.example.test/group/trunks.git"


FAKE = """#!/bin/sh
# A fake {name}: records its arguments (and a --body-file) for the test.
printf '%s\\n' "$*" >> "{log}"
for arg in "$@"; do
  if [ "$previous" = "--body-file" ]; then cat "$arg" > "{log}.body"; fi
  case "$arg" in body@*) cat "${{arg#body@}}" > "{log}.body";; esac
  previous="$arg"
done
"""


@dataclass
class World:
    """The origin repository, the fakes, the emulator and the runner's shared places."""

    root: Path
    origin: Path
    fakes: Path
    emulator: EmulatorHandle
    artifacts: Path
    jobs_run: int = 0

    def fake_calls(self, name: str) -> list[str]:
        log = self.fakes / f"{name}.log"
        return log.read_text().splitlines() if log.exists() else []

    def fake_body(self, name: str) -> str:
        return (self.fakes / f"{name}.log.body").read_text()

    def base_env(self) -> dict[str, str]:
        path = os.pathsep.join([str(self.fakes / "bin"), str(VENV_BIN), os.environ["PATH"]])
        return {
            "PATH": path,
            "HOME": os.environ["HOME"],
            "LANG": "C.UTF-8",
            "TRUNKSYNC_API_URL": self.emulator.url,  # where the platform is, for this test
            # The loopback emulator answers at once: a short deadline keeps the wait
            # after a 5xx (--timeout + 2 s) short.
            "TRUNKSYNC_TIMEOUT": "0.5",
            "GIT_CONFIG_NOSYSTEM": "1",
        }

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd or self.root, capture_output=True, text=True, check=True
        )
        return done.stdout

    def origin_file(self, path: str, ref: str = "main") -> str:
        return self.git("--git-dir", str(self.origin), "show", f"{ref}:{path}")

    def push_change(self, branch: str, files: dict[str, str], message: str) -> None:
        """A developer's commit on `branch` (created from main), pushed to origin."""
        work = self.root / f"dev-{self.jobs_run}-{branch}"
        self.jobs_run += 1
        self.git("clone", "-q", str(self.origin), str(work))
        self.git("checkout", "-q", "-B", branch, cwd=work)
        for path, text in files.items():
            write(work / path, text)
        self.git("add", "-A", cwd=work)
        self.git(
            "-c", "user.name=dev", "-c", "user.email=dev@x", "commit", "-qm", message, cwd=work
        )
        self.git("push", "-q", "origin", f"HEAD:{branch}", cwd=work)


@pytest.fixture
def world(isolated: Path, emulator: EmulatorHandle) -> World:
    root = isolated
    origin = root / "origin.git"
    fakes = root / "fakes"
    (fakes / "bin").mkdir(parents=True)
    for name in ("pip", "gh", "curl"):
        script = fakes / "bin" / name
        script.write_text(FAKE.format(name=name, log=fakes / f"{name}.log"))
        script.chmod(0o755)
    home = Path(os.environ["HOME"])
    # GitLab's apply pushes to an https URL: git rewrites it to the local origin.
    (home / ".gitconfig").write_text(
        f'[url "{origin}"]\n\tinsteadOf = {GITLAB_PUSH_URL}\n[init]\n\tdefaultBranch = main\n'
    )
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    # GitLab accepts push options (`git push -o ci.skip`); a bare repository must be told to.
    subprocess.run(
        ["git", "--git-dir", str(origin), "config", "receive.advertisePushOptions", "true"],
        check=True,
    )
    made = World(root, origin, fakes, emulator, root / "artifacts")
    made.artifacts.mkdir()
    made.push_change(
        "main",
        {
            "state/.gitkeep": "",
            ".github/workflows/trunks.yml": (CI / "github-actions.yml").read_text(),
            ".gitlab-ci.yml": (CI / "gitlab-ci.yml").read_text(),
        },
        "empty repository",
    )
    return made


# ---------------------------------------------------------------- GitHub Actions


@dataclass
class GithubJob:
    """What one job did: each step's outcome, outputs, and the job summary."""

    outcomes: dict[str, str] = field(default_factory=dict)  # step id -> success/failure/skipped
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: str = ""
    logs: list[str] = field(default_factory=list)
    job_outputs: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return "failure" in self.outcomes.values()


@dataclass
class GithubEvent:
    name: str  # pull_request, push
    ref: str  # the branch checked out when a step does not say `ref:`
    pr_number: str = "7"
    from_fork: bool = False
    secrets: dict[str, str] = field(default_factory=lambda: dict(SECRETS))


def github_expression(text: str, event: GithubEvent) -> str:
    """${{ ... }} in an `env:` value: the few the recipe uses; any other fails the test."""
    known = {
        "github.token": "ghs_test_token",
        "github.event.pull_request.number": event.pr_number,
    }

    def value(match: re.Match[str]) -> str:
        expression = match[1].strip()
        if expression.startswith("secrets."):
            return event.secrets.get(expression.removeprefix("secrets."), "")
        assert expression in known, f"the test runner does not know ${{{{ {expression} }}}}"
        return known[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def github_condition(
    condition: str, event: GithubEvent, job: GithubJob, needs: dict[str, GithubJob]
) -> bool:
    """A step's or job's `if:`; the recipe's own conditions, spelled out."""
    conditions: dict[str, Callable[[], bool]] = {
        "github.event_name == 'pull_request'": lambda: event.name == "pull_request",
        "github.event_name != 'pull_request'": lambda: event.name != "pull_request",
        "github.event.pull_request.head.repo.full_name == github.repository": lambda: (
            not event.from_fork
        ),
        "steps.plan.outputs.exitcode == '2'": lambda: (
            job.outputs.get("plan", {}).get("exitcode") == "2"
        ),
        "always() && steps.apply.conclusion != 'skipped'": lambda: (
            job.outcomes.get("apply") != "skipped"
        ),
        "needs.plan.outputs.exitcode == '2'": lambda: (
            needs["plan"].job_outputs.get("exitcode") == "2"
        ),
    }
    assert condition in conditions, f"the test runner does not know `if: {condition}`"
    return conditions[condition]()


def run_github_job(
    world: World,
    name: str,
    event: GithubEvent,
    needs: dict[str, GithubJob] | None = None,
) -> GithubJob | None:
    """Run job `name` of the workflow; None when its `if:` leaves it out."""
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    spec = workflow["jobs"][name]
    job = GithubJob()
    needs = needs or {}
    if "if" in spec and not github_condition(spec["if"], event, job, needs):
        return None
    world.jobs_run += 1
    workspace = world.root / f"gh-{world.jobs_run}-{name}"
    runner_temp = world.root / f"gh-{world.jobs_run}-tmp"
    runner_temp.mkdir()
    for index, step in enumerate(spec["steps"]):
        step_id = step.get("id", f"step{index}")
        condition = step.get("if")
        always = bool(condition and condition.startswith("always()"))
        if job.failed and not always:
            job.outcomes[step_id] = "skipped"
            continue
        if condition and not github_condition(condition, event, job, needs):
            job.outcomes[step_id] = "skipped"
            continue
        if "uses" in step:
            github_action(world, step, event, workspace)
            job.outcomes[step_id] = "success"
            continue
        summary = runner_temp / f"summary-{index}"
        output = runner_temp / f"output-{index}"
        summary.touch()
        output.touch()
        env = {
            **world.base_env(),
            **{key: str(value) for key, value in workflow.get("env", {}).items()},
            "TRUNKSYNC_GIT_URL": GIT_URL,  # what the user fills in at the top
            "TRUNKSYNC_COMMIT": COMMIT,
            **{k: github_expression(str(v), event) for k, v in step.get("env", {}).items()},
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_EVENT_NAME": event.name,
            "GITHUB_RUN_ID": "4242",
            "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_TEMP": str(runner_temp),
        }
        script = runner_temp / f"step-{index}.sh"
        script.write_text(step["run"])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        job.logs.append(f"$ {step.get('name', step['run'][:40])}\n{done.stdout}{done.stderr}")
        job.outcomes[step_id] = "success" if done.returncode == 0 else "failure"
        job.summary += summary.read_text()
        job.outputs[step_id] = dict(
            line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
        )
    for key, expression in spec.get("outputs", {}).items():
        step_id, _, output_name = (
            expression.removeprefix("${{ steps.").removesuffix(" }}").partition(".outputs.")
        )
        job.job_outputs[key] = job.outputs.get(step_id, {}).get(output_name, "")
    return job


def github_action(world: World, step: dict[str, Any], event: GithubEvent, workspace: Path) -> None:
    action = step["uses"].split("@")[0]
    options = step.get("with", {})
    if action == "actions/checkout":
        world.git("clone", "-q", str(world.origin), str(workspace))
        world.git("checkout", "-q", options.get("ref", event.ref), cwd=workspace)
    elif action == "actions/upload-artifact":
        target = world.artifacts / options["name"]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(workspace / options["path"], target)
    elif action == "actions/download-artifact":
        for item in (world.artifacts / options["name"]).iterdir():
            shutil.copy(item, workspace)
    else:
        assert action == "actions/setup-python", f"the test runner does not know {action}"


def github_push_pipeline(world: World) -> tuple[GithubJob, GithubJob | None]:
    event = GithubEvent("push", "main")
    plan = run_github_job(world, "plan", event)
    assert plan is not None
    apply = run_github_job(world, "apply", event, needs={"plan": plan})
    return plan, apply


@pytest.mark.slow  # whole pipelines: several trunksync processes
def test_github_push_plans_applies_the_saved_plan_and_commits_the_state(world: World) -> None:
    world.push_change("main", {"trunks.yaml": TWO_TRUNKS}, "two trunks")
    assert run_github_job(world, "pr-plan", GithubEvent("push", "main")) is None
    plan, apply = github_push_pipeline(world)
    assert not plan.failed, plan.logs
    assert plan.job_outputs == {"exitcode": "2"}
    assert plan.summary.count("Twilio Production") == 1  # the summary is written once
    assert (world.artifacts / "trunks-plan" / "trunks.plan").is_file()
    assert apply is not None and not apply.failed, apply.logs
    assert sorted(t["trunk_name"] for t in world.emulator.active_trunks()) == [
        "Exotel India",
        "Twilio Production",
    ]
    state = json.loads(world.origin_file("state/trunks.json"))
    assert set(state["trunks"]) == {"Exotel India", "Twilio Production"}
    log = world.git("--git-dir", str(world.origin), "log", "-1", "--format=%an %s", "main")
    assert log.strip() == "trunksync trunksync: record trunk ids (run 4242)"
    everything = "".join(plan.logs + apply.logs) + plan.summary + apply.summary
    for sentinel in SENTINELS:
        assert sentinel not in everything
    assert world.fake_calls("pip") == [f"install trunksync @ git+{GIT_URL}@{COMMIT}"] * 2

    # The next push that changes nothing asks for no apply, and creates nothing.
    again_plan, again_apply = github_push_pipeline(world)
    assert again_plan.job_outputs == {"exitcode": "0"}, again_plan.logs
    assert again_apply is None
    assert world.emulator.stats()["create_calls"] == 2


@pytest.mark.slow  # whole pipelines: several trunksync processes
def test_github_apply_failure_still_commits_the_ids_that_arrived(world: World) -> None:
    world.push_change("main", {"trunks.yaml": TWO_TRUNKS}, "two trunks")
    plan = run_github_job(world, "plan", GithubEvent("push", "main"))
    assert plan is not None and plan.job_outputs == {"exitcode": "2"}
    world.emulator.queue_faults(["none"] + ["error-before"] * 20)  # later creates keep failing
    apply = run_github_job(world, "apply", GithubEvent("push", "main"), needs={"plan": plan})
    assert apply is not None
    assert apply.outcomes["apply"] == "failure"
    assert apply.outcomes[next(k for k in apply.outcomes if k.startswith("step"))] == "success"
    state = json.loads(world.origin_file("state/trunks.json"))
    assert len(state["trunks"]) == 1  # the one id that arrived was pushed


@pytest.mark.parametrize("commit", ["", "main", "v1.2.3", COMMIT[:12]])
def test_install_step_refuses_anything_but_a_full_commit(world: World, commit: str) -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    install = next(
        s for s in workflow["jobs"]["plan"]["steps"] if s.get("name") == "Install trunksync"
    )
    env = {**world.base_env(), "TRUNKSYNC_GIT_URL": GIT_URL, "TRUNKSYNC_COMMIT": commit}
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", install["run"]], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "::error::set TRUNKSYNC_GIT_URL and TRUNKSYNC_COMMIT" in done.stdout
    assert world.fake_calls("pip") == []


@pytest.mark.parametrize("from_fork", [False, True])
def test_github_pull_request_plans_once_and_comments_unless_a_fork(
    world: World, from_fork: bool
) -> None:
    world.push_change("add-trunks", {"trunks.yaml": TWO_TRUNKS}, "two trunks")
    secrets = {} if from_fork else dict(SECRET_ENV)  # forks get no secrets
    event = GithubEvent("pull_request", "add-trunks", from_fork=from_fork, secrets=secrets)
    job = run_github_job(world, "pr-plan", event)
    assert job is not None and not job.failed, job.logs
    assert job.summary.count("Twilio Production") == 1
    if from_fork:
        assert world.fake_calls("gh") == []
    else:
        assert world.fake_calls("gh") == [
            "pr comment 7 --body-file plan.md --edit-last --create-if-none"
        ]
        assert world.fake_body("gh").strip() == job.summary.strip()  # the same plan, once
    assert world.emulator.stats()["create_calls"] == 0


def test_github_validation_errors_are_annotated(world: World) -> None:
    broken = TWO_TRUNKS.replace("+918044319240", "not-a-number")
    world.push_change("broken", {"trunks.yaml": broken}, "typo")
    job = run_github_job(world, "pr-plan", GithubEvent("pull_request", "broken"))
    assert job is not None and job.failed
    assert "::error file=trunks.yaml,line=13," in "".join(job.logs)


# ---------------------------------------------------------------- GitLab CI


@dataclass
class GitlabPipeline:
    source: str  # push, web, merge_request_event
    branch: str
    variables: dict[str, str]
    logs: dict[str, str] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)


def gitlab_pipeline(world: World, source: str, branch: str, protected: bool) -> GitlabPipeline:
    variables = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": source,
        "CI_DEFAULT_BRANCH": "main",
        "CI_PIPELINE_ID": "5151",
        "CI_SERVER_HOST": "gitlab.example.test",
        "CI_PROJECT_PATH": "group/trunks",
        "CI_PROJECT_ID": "99",
        "CI_API_V4_URL": "https://gitlab.example.test/api/v4",
        "TRUNKSYNC_GIT_URL": GIT_URL,
        "TRUNKSYNC_COMMIT": COMMIT,
    }
    if source == "merge_request_event":
        variables["CI_MERGE_REQUEST_IID"] = "3"
    else:
        variables["CI_COMMIT_BRANCH"] = branch
    if protected:  # protected variables reach protected branches only
        variables.update(SECRETS, TRUNKSYNC_GITLAB_TOKEN="glpat-test")
    return GitlabPipeline(source, branch, variables)


def run_gitlab_job(
    world: World, pipeline: GitlabPipeline, name: str, extra: dict[str, str] | None = None
) -> int:
    config = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    spec = config[name]
    world.jobs_run += 1
    project_dir = world.root / f"gl-{world.jobs_run}-{name}"
    world.git("clone", "-q", str(world.origin), str(project_dir))
    world.git("checkout", "-q", "--detach", f"origin/{pipeline.branch}", cwd=project_dir)
    for artifact in world.artifacts.glob("gitlab/*"):  # artifacts of earlier stages
        shutil.copy(artifact, project_dir)
    variables = {
        key: str(value).replace("$CI_PROJECT_DIR", str(project_dir))
        for key, value in config["variables"].items()
    }
    lines = [*config["default"]["before_script"], *spec["script"]]
    env = {
        **world.base_env(),
        **variables,
        **pipeline.variables,
        **(extra or {}),
        "CI_PROJECT_DIR": str(project_dir),
        "CI_JOB_NAME": name,
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(lines)],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    pipeline.logs[name] = done.stdout + done.stderr
    pipeline.status[name] = done.returncode
    artifacts = spec.get("artifacts", {})
    saved = world.artifacts / "gitlab"
    saved.mkdir(exist_ok=True)
    wanted = [*artifacts.get("paths", []), *artifacts.get("reports", {}).values()]
    for path in wanted:
        if (project_dir / path).exists():
            shutil.copy(project_dir / path, saved)
    return done.returncode


@pytest.mark.slow  # whole pipelines: several trunksync processes
def test_gitlab_default_branch_plans_applies_and_pushes_the_state(world: World) -> None:
    world.push_change("main", {"trunks.yaml": TWO_TRUNKS}, "two trunks")
    pipeline = gitlab_pipeline(world, "push", "main", protected=True)
    assert run_gitlab_job(world, pipeline, "validate") == 0, pipeline.logs
    assert json.loads((world.artifacts / "gitlab" / "gl-code-quality.json").read_text()) == []
    assert run_gitlab_job(world, pipeline, "plan") == 0, pipeline.logs  # exit 2 is not a failure
    assert "Twilio Production" in pipeline.logs["plan"]  # the plan is in the log the approver reads
    assert run_gitlab_job(world, pipeline, "apply") == 0, pipeline.logs
    assert len(world.emulator.active_trunks()) == 2
    state = json.loads(world.origin_file("state/trunks.json"))
    assert set(state["trunks"]) == {"Exotel India", "Twilio Production"}
    # Applying the same saved plan again is refused: it is stale now.
    assert run_gitlab_job(world, pipeline, "apply") == 1
    assert "stale" in pipeline.logs["apply"]
    assert world.emulator.stats()["create_calls"] == 2
    for sentinel in SENTINELS:
        assert sentinel not in "".join(pipeline.logs.values())


def test_gitlab_default_branch_without_secrets_fails_validation(world: World) -> None:
    world.push_change("main", {"trunks.yaml": TWO_TRUNKS}, "two trunks")
    pipeline = gitlab_pipeline(world, "push", "main", protected=False)  # main not protected
    assert run_gitlab_job(world, pipeline, "validate") == 1
    assert "TWILIO_ACCOUNT_SID is not set" in pipeline.logs["validate"]


@pytest.mark.parametrize("note_token", [None, "glpat-notes"])
def test_gitlab_merge_request_plans_without_secrets(world: World, note_token: str | None) -> None:
    world.push_change("add-trunks", {"trunks.yaml": TWO_TRUNKS}, "two trunks")
    pipeline = gitlab_pipeline(world, "merge_request_event", "add-trunks", protected=False)
    extra = {"TRUNKSYNC_MR_NOTE_TOKEN": note_token} if note_token else {}
    assert run_gitlab_job(world, pipeline, "validate", extra) == 0, pipeline.logs
    assert run_gitlab_job(world, pipeline, "mr-plan", extra) == 0, pipeline.logs
    plan_md = (world.artifacts / "gitlab" / "plan.md").read_text()
    assert "Twilio Production" in plan_md
    if note_token is None:
        assert world.fake_calls("curl") == []
    else:
        [call] = world.fake_calls("curl")
        assert call.endswith("/projects/99/merge_requests/3/notes")
        assert world.fake_body("curl") == plan_md


def test_gitlab_merge_request_problems_go_to_code_quality(world: World) -> None:
    broken = TWO_TRUNKS.replace("+918044319240", "not-a-number")
    world.push_change("broken", {"trunks.yaml": broken}, "typo")
    pipeline = gitlab_pipeline(world, "merge_request_event", "broken", protected=False)
    assert run_gitlab_job(world, pipeline, "validate") == 1
    [issue] = json.loads((world.artifacts / "gitlab" / "gl-code-quality.json").read_text())
    assert issue["location"] == {"path": "trunks.yaml", "lines": {"begin": 13}}
