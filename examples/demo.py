"""The main job, end to end with no account: plan and apply examples/trunks.yaml
against a local emulator, then plan again to show that nothing is left to do.

Run from the repository root:  python examples/demo.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRUNKSYNC = [sys.executable, "-m", "trunksync"]


def main() -> int:
    env = {
        **os.environ,
        "TRUNKSYNC_API_KEY": "demo-key",
        # Demo credentials for the emulator; real ones come from your secret store.
        "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
        "TWILIO_AUTH_TOKEN": "demo-auth-token",
    }
    emulator = subprocess.Popen(
        [*TRUNKSYNC, "emulator", "--port", "0", "--api-key", "demo-key"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().split()[-1]
        env["TRUNKSYNC_API_URL"] = url
        with tempfile.TemporaryDirectory() as folder:
            state = str(Path(folder) / "trunks.json")
            common = ["-f", str(HERE / "trunks.yaml"), "--state", state]
            steps = [
                ["validate", "-f", str(HERE / "trunks.yaml")],
                ["plan", *common],
                ["apply", *common, "--auto-approve"],
                ["plan", *common, "--detailed-exitcode"],
                ["output", "--state", state],
            ]
            for step in steps:
                print(f"\n$ trunksync {' '.join(step)}", flush=True)
                code = subprocess.call([*TRUNKSYNC, *step], env=env)
                if code != 0:
                    print(f"demo: step failed with exit code {code}", file=sys.stderr)
                    return code
        print(f"\ndemo: done (emulator was at {url}).")
        return 0
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
