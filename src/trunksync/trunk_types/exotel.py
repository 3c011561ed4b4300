"""The exotel trunk type: an Exotel virtual number, with optional proxy overrides."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from trunksync.trunk_types import TrunkTypeSpec, register
from trunksync.trunk_types.fields import Host, PhoneNumber, Port


class ExotelConfig(BaseModel):
    """trunk_config of an exotel trunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exotel_number: PhoneNumber = Field(
        description="The Exotel virtual number used as caller ID, E.164."
    )
    sip_host: Host | None = Field(None, description="Overrides the default Exotel SIP proxy host.")
    sip_port: Port | None = Field(None, description="Overrides the default Exotel SIP proxy port.")
    sip_domain: Host | None = Field(
        None, description="Overrides the default Exotel SIP domain (realm)."
    )


SPEC = register(TrunkTypeSpec("exotel", ExotelConfig, "A trunk of type exotel."))
