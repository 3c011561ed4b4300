"""`trunksync apply --state postgresql://...` in real subprocesses, against the emulator and
the throwaway PostgreSQL cluster: serialised runs, kill -9, the database stopped mid-run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, exotel_trunks, write
from pg_cluster import PgCluster
from processes import TRUNKSYNC, trunksync
from trunksync.backends.postgres import PostgresBackend
from trunksync.state import State

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def env_for(emulator: EmulatorHandle) -> dict[str, str]:
    return {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}


def start_apply(cwd: Path, env: dict[str, str], url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TRUNKSYNC, "apply", "--auto-approve", "--timeout", "1", "--state", url, *extra],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], limit: float = 120.0) -> None:
    """Poll a condition (not a race-hiding sleep): bounded, fails loudly."""
    import time

    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def creates_reached(
    emulator: EmulatorHandle, process: subprocess.Popen[str], count: int
) -> Callable[[], bool]:
    return lambda: process.poll() is not None or emulator.stats()["create_calls"] >= count


def check_converged(emulator: EmulatorHandle, url: str, names: int) -> State:
    """No duplicates, every entry created once, the state names exactly the active ids."""
    active = emulator.active_trunks()
    by_name: dict[str, int] = {}
    for trunk in active:
        by_name[trunk["trunk_name"]] = by_name.get(trunk["trunk_name"], 0) + 1
    assert {name: n for name, n in by_name.items() if n > 1} == {}, "duplicate trunks"
    assert len(by_name) == names, "a trunk is missing"
    state = PostgresBackend.from_url(url).load()
    assert {n: r.trunk_id for n, r in state.trunks.items()} == {
        t["trunk_name"]: t["trunk_id"] for t in active
    }, "a state id is not the active trunk"
    assert state.intents == {}, "an intent was left"
    return state


def converge(cwd: Path, env: dict[str, str], url: str) -> None:
    for _ in range(6):
        result = trunksync(
            "apply", "--auto-approve", "--timeout", "1", "--state", url, env=env, cwd=cwd
        )
        if result.returncode == 0:
            return
    raise AssertionError(f"apply did not converge in 6 runs: {result.stderr}")


def test_four_applies_from_four_folders_serialise_on_one_database(
    tmp_path: Path, pg_url: str, make_emulator: Callable[..., EmulatorHandle]
) -> None:
    emulator = make_emulator(latency_ms=10)
    folders = [
        write(tmp_path / f"runner-{i}" / "trunks.yaml", exotel_trunks(20)).parent for i in range(4)
    ]
    processes = [
        start_apply(folder, env_for(emulator), pg_url, "--lock-timeout", "120")
        for folder in folders
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in processes]
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    assert emulator.stats()["create_calls"] == 20
    check_converged(emulator, pg_url, 20)
    for folder in folders:  # no file state anywhere: the database is the one state
        assert not (folder / "state").exists()


def test_a_second_apply_elsewhere_fails_at_once_naming_the_holder(
    tmp_path: Path, pg_url: str, make_emulator: Callable[..., EmulatorHandle]
) -> None:
    emulator = make_emulator(latency_ms=300)
    first_folder = write(tmp_path / "one" / "trunks.yaml", exotel_trunks(30)).parent
    second_folder = write(tmp_path / "two" / "trunks.yaml", exotel_trunks(30)).parent
    env = {**env_for(emulator), "CI_JOB_URL": "https://gitlab.example/acme/-/jobs/99"}
    first = start_apply(first_folder, env, pg_url, "--parallelism", "1")
    try:
        wait_for(creates_reached(emulator, first, 1))
        second = trunksync("apply", "--auto-approve", "--state", pg_url, env=env, cwd=second_folder)
    finally:
        first.kill()
        first.wait(30)
    assert second.returncode == 1
    assert second.stderr.startswith("Error: the PostgreSQL state postgresql 127.0.0.1:")
    assert f"is locked by trunksync apply (pid {first.pid} on " in second.stderr
    assert "https://gitlab.example/acme/-/jobs/99" in second.stderr
    assert "--lock-timeout" in second.stderr


def test_kill_9_mid_apply_frees_the_lock_at_once_and_the_next_apply_converges(
    tmp_path: Path, pg_url: str, make_emulator: Callable[..., EmulatorHandle]
) -> None:
    emulator = make_emulator(latency_ms=100)
    cwd = write(tmp_path / "trunks.yaml", exotel_trunks(30)).parent
    process = start_apply(cwd, env_for(emulator), pg_url, "--parallelism", "2")
    wait_for(creates_reached(emulator, process, 4))
    assert process.poll() is None, "apply finished before the kill"
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    # The session died with the process; the wait bounds only the server's noticing.
    with PostgresBackend.from_url(pg_url).lock(timeout=10, command="check") as locked:
        assert locked.existed
        created = {t["trunk_name"] for t in emulator.trunks()}
        accounted = set(locked.state.trunks) | set(locked.state.intents)
        assert created <= accounted, "a create was sent without its intent durable"
    converge(cwd, env_for(emulator), pg_url)
    check_converged(emulator, pg_url, 30)


def test_the_database_stopped_mid_apply_is_a_clear_error_and_the_next_run_converges(
    tmp_path: Path,
    pg_cluster: PgCluster,
    pg_url: str,
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(latency_ms=100)
    cwd = write(tmp_path / "trunks.yaml", exotel_trunks(30)).parent
    process = start_apply(cwd, env_for(emulator), pg_url, "--parallelism", "2")
    wait_for(creates_reached(emulator, process, 4))
    assert process.poll() is None, "apply finished before the database stopped"
    pg_cluster.stop("immediate")
    try:
        _, err = process.communicate(timeout=120)
        assert process.returncode not in (0, None)
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("Error: "), err
        assert "PostgreSQL state" in err
        assert "Traceback" not in err
    finally:
        pg_cluster.start()
    state = PostgresBackend.from_url(pg_url).load()
    created = {t["trunk_name"] for t in emulator.trunks()}
    assert created <= set(state.trunks) | set(state.intents), "a create without a durable intent"
    converge(cwd, env_for(emulator), pg_url)
    check_converged(emulator, pg_url, 30)


def test_state_migrate_from_a_file_to_postgres_keeps_lineage_and_serial(
    tmp_path: Path, pg_url: str, make_emulator: Callable[..., EmulatorHandle]
) -> None:
    emulator = make_emulator()
    env = env_for(emulator)
    cwd = write(tmp_path / "trunks.yaml", exotel_trunks(5)).parent
    assert trunksync("apply", "--auto-approve", env=env, cwd=cwd).returncode == 0
    file_state = State.model_validate_json((cwd / "state/trunks.json").read_bytes())
    url = pg_url + "?workspace=prod"
    moved = trunksync("state", "migrate", "--to", url, env=env, cwd=cwd)
    assert moved.returncode == 0, moved.stderr
    on_pg = PostgresBackend.from_url(url).load()
    assert (on_pg.lineage, on_pg.serial, on_pg.trunks) == (
        file_state.lineage,
        file_state.serial,
        file_state.trunks,
    )
    refused = trunksync("apply", "--auto-approve", env=env, cwd=cwd)
    assert refused.returncode == 1 and "moved" in refused.stderr
    write(cwd / "trunks.yaml", exotel_trunks(6))
    applied = trunksync("apply", "--auto-approve", "--state", url, env=env, cwd=cwd)
    assert applied.returncode == 0, applied.stderr
    check_converged(emulator, url, 6)


def test_state_migrate_from_postgres_to_a_file_marks_the_workspace_moved(
    tmp_path: Path, pg_url: str, make_emulator: Callable[..., EmulatorHandle]
) -> None:
    emulator = make_emulator()
    env = env_for(emulator)
    url = pg_url + "?workspace=prod"
    cwd = write(tmp_path / "trunks.yaml", exotel_trunks(5)).parent
    applied = trunksync("apply", "--auto-approve", "--state", url, env=env, cwd=cwd)
    assert applied.returncode == 0, applied.stderr
    on_pg = check_converged(emulator, url, 5)
    history = trunksync("state", "history", "--state", url, env=env, cwd=cwd)
    assert history.returncode == 0 and "trunksync apply" in history.stdout
    assert "@" in history.stdout  # the actor: user@host
    taken = trunksync("state", "migrate", "--to", "back.json", "--state", url, env=env, cwd=cwd)
    assert taken.returncode == 0, taken.stderr
    restored = State.model_validate_json((cwd / "back.json").read_bytes())
    # The source is marked as moved first, a commit of its own: the copy goes on from it.
    assert (restored.lineage, restored.serial, restored.trunks) == (
        on_pg.lineage,
        on_pg.serial + 1,
        on_pg.trunks,
    )
    refused = trunksync("apply", "--auto-approve", "--state", url, env=env, cwd=cwd)
    assert refused.returncode == 1
    assert "was moved to local" in refused.stderr and str(cwd / "back.json") in refused.stderr
    again = trunksync("state", "migrate", "--to", url, "--state", "back.json", env=env, cwd=cwd)
    assert again.returncode == 1  # the workspace is not empty: never two live copies
    assert emulator.stats()["create_calls"] == 5


def test_no_password_in_any_output_or_plan(
    tmp_path: Path, pg_cluster: PgCluster, pg_url: str, make_emulator: Callable[..., EmulatorHandle]
) -> None:
    password = "Pa55-SENTINEL-in-the-url"
    dbname = pg_url.rsplit("/", 1)[1]
    url = f"postgresql://postgres:{password}@127.0.0.1:{pg_cluster.port}/{dbname}"
    emulator = make_emulator()
    env = env_for(emulator)
    cwd = write(tmp_path / "trunks.yaml", exotel_trunks(2)).parent
    planned = trunksync("plan", "--state", url, "--out", "plan.json", env=env, cwd=cwd)
    assert planned.returncode in (0, 2), planned.stderr
    applied = trunksync("apply", "--auto-approve", "--state", url, env=env, cwd=cwd)
    down = f"postgresql://postgres:{password}@127.0.0.1:{pg_cluster.port}/no_such_db"
    failed = trunksync("apply", "--auto-approve", "--state", down, env=env, cwd=cwd)
    assert applied.returncode == 0, applied.stderr
    assert failed.returncode == 1 and failed.stderr.startswith("Error: ")
    texts = [r.stdout + r.stderr for r in (planned, applied, failed)]
    texts.append((cwd / "plan.json").read_text())
    for text in texts:
        assert password not in text and password[:8] not in text


@pytest.mark.slow
def test_kill_9_at_random_moments_on_postgres_never_loses_or_duplicates(
    tmp_path: Path, pg_url: str, make_emulator: Callable[..., EmulatorHandle]
) -> None:
    trials = int(os.environ.get("TRUNKSYNC_CHAOS_TRIALS", "12"))
    rng = random.Random(int(os.environ.get("TRUNKSYNC_CHAOS_SEED", "1234")))
    emulator = make_emulator(latency_ms=20)
    env = env_for(emulator)
    names = 12
    for trial in range(trials):
        emulator.reset()
        url = f"{pg_url}?workspace=trial-{trial}"
        cwd = write(tmp_path / f"trial-{trial}" / "trunks.yaml", exotel_trunks(names)).parent
        process = start_apply(cwd, env, url, "--parallelism", "4")
        wait_for(creates_reached(emulator, process, rng.randint(0, names)))
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        converge(cwd, env, url)
        check_converged(emulator, url, names)
