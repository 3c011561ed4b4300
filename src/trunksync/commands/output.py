"""`trunksync output`: trunk name -> trunk id, for whoever places calls."""

from __future__ import annotations

import click

from trunksync.commands._common import json_option, state_option


@click.command()
@state_option
@json_option
def output(state_spec: str, as_json: bool) -> None:
    """Print each managed trunk's id (JSON: {"name": "ST_..."})."""
    from trunksync import api, render

    state = api.open_state(state_spec).load()
    ids = {name: state.trunks[name].trunk_id for name in sorted(state.trunks)}
    if as_json:
        click.echo(render.dumps(ids))
        return
    click.echo(render.outputs_text(ids), nl=False)
