"""`trunksync emulator`: serve the platform API on loopback.

fastapi and uvicorn are an optional extra, so they are imported inside the
command: `trunksync --help` and the other commands never pay for them.
"""

from __future__ import annotations

from pathlib import Path

import click

from trunksync.emulator.config import FAULT_KINDS, NO_FAULT, EmulatorConfig
from trunksync.errors import TrunksyncError
from trunksync.loopback import is_loopback

MISSING_EXTRA = "the emulator needs the optional extra: pip install 'trunksync[emulator]'"


def _parse_kinds(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in value.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown or not kinds:
        raise click.BadParameter(
            f"expected a comma list of {', '.join(FAULT_KINDS)}; got {value!r}"
        )
    return kinds


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on; 0 picks a free one (read it from the first output line).",
)
@click.option(
    "--api-key",
    envvar="TRUNKSYNC_API_KEY",
    default="emulator-key",
    show_default=False,  # the key is never printed, not even a default in --help
    help="Bearer key the emulator accepts [default: $TRUNKSYNC_API_KEY, else a fixed dev key].",
)
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=(
        "JSON file that keeps the emulator's trunks across restarts. Each change is "
        "appended to FILE.log (one write, so a killed emulator loses nothing it "
        "answered), folded into FILE at start and at shutdown. One emulator per FILE."
    ),
)
@click.option(
    "--latency-ms",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Delay in milliseconds before answering each create, list and deactivate call.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=click.Choice((*FAULT_KINDS, NO_FAULT)),
    help=(
        "Fault for the next create call; repeat to queue several, in order ("
        "'none' lets one call through). error-before: 500, nothing created; "
        "error-after: created, then 500; drop-after: created, then the connection "
        "drops; slow: created, answered after --slow-seconds; rate-limit: 429."
    ),
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Chance of a random fault per create call once the --fault queue is empty.",
)
@click.option(
    "--fault-kinds",
    default=",".join(FAULT_KINDS),
    show_default=True,
    callback=_parse_kinds,
    help="Comma list of the kinds --fault-rate draws from.",
)
@click.option("--seed", type=int, help="Seed for --fault-rate, for repeatable runs.")
@click.option(
    "--slow-seconds",
    type=click.FloatRange(min=0.0),
    default=5.0,
    show_default=True,
    help="How long a `slow` fault holds a create's answer (after the trunk is created).",
)
@click.option(
    "--retry-after",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Retry-After seconds of a rate-limit fault.",
)
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not a loopback address.")
def emulator(
    host: str,
    port: int,
    api_key: str,
    data_file: Path | None,
    latency_ms: int,
    faults: tuple[str, ...],
    fault_rate: float,
    fault_kinds: tuple[str, ...],
    seed: int | None,
    slow_seconds: float,
    retry_after: int,
    allow_remote: bool,
) -> None:
    """Serve the platform API on loopback, with optional fault injection.

    The first line of output is `trunksync emulator listening on URL`. Test-only
    routes live under /_emulator (trunks, faults, stats, reset). Stop with Ctrl-C.
    """
    if not is_loopback(host) and not allow_remote:
        # The emulator has no real security: exposing it needs a deliberate flag.
        raise click.BadParameter(
            f"{host!r} is not a loopback address; add --allow-remote to listen on it",
            param_hint="--host",
        )
    if not api_key:
        raise click.BadParameter("must not be empty", param_hint="--api-key")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise TrunksyncError(MISSING_EXTRA) from None
    from trunksync.emulator.server import serve

    config = EmulatorConfig(
        api_key=api_key,
        data_file=data_file,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        fault_kinds=fault_kinds,
        seed=seed,
        slow_seconds=slow_seconds,
        retry_after_seconds=retry_after,
        faults=list(faults),
    )
    try:
        serve(config, host=host, port=port)
    except OSError as error:
        raise TrunksyncError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    except KeyboardInterrupt:
        # uvicorn re-raises the SIGINT it handled; the shutdown was already clean.
        pass
