"""Who is running: user, host and, in CI, the run's URL.

Recorded with a lock (so "locked by ..." names the holder) and with every
history entry. Never holds a credential: only names and a public URL.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping


def ci_run_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The CI run's URL from the environment (GitHub Actions, GitLab CI), if any."""
    env = os.environ if environ is None else environ
    server = env.get("GITHUB_SERVER_URL")
    repository = env.get("GITHUB_REPOSITORY")
    run_id = env.get("GITHUB_RUN_ID")
    if server and repository and run_id:
        return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
    return env.get("CI_JOB_URL") or None


def user_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (containers)
        return f"uid {os.getuid()}"


def host_name() -> str:
    return socket.gethostname()


def actor(environ: Mapping[str, str] | None = None) -> str:
    """`user@host`, and the CI run URL when there is one."""
    url = ci_run_url(environ)
    who = f"{user_name()}@{host_name()}"
    return f"{who} ({url})" if url else who
