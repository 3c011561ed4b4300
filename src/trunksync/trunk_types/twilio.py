"""The twilio trunk type: a Twilio Elastic SIP Trunking termination domain."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from trunksync.trunk_types import TrunkTypeSpec, register
from trunksync.trunk_types.fields import Host, PhoneNumber, Secret


class TwilioConfig(BaseModel):
    """trunk_config of a twilio trunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Host = Field(description="The Twilio SIP termination domain.")
    numbers: Annotated[list[PhoneNumber], Field(min_length=1)] = Field(
        description="The phone numbers of the trunk, E.164."
    )
    username: Secret = Field(description="The Twilio Account SID, from ${VARIABLE}.")
    password: Secret = Field(description="The Twilio Auth Token, from ${VARIABLE}.")


SPEC = register(TrunkTypeSpec("twilio", TwilioConfig, "A trunk of type twilio."))
