"""The FastAPI app that plays the platform API (see API.md), plus test-only admin routes."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from trunksync.emulator.config import EmulatorConfig
from trunksync.emulator.faults import FaultPicker
from trunksync.emulator.store import Stats, TrunkStore
from trunksync.emulator.validation import trunk_config_problems

CREATED_MESSAGE = "Outbound trunk created successfully. Store the trunk_id securely."
CREATION_ERROR = {"success": False, "message": "Internal error during creation"}
# A fixed value: the emulator has one user, whose key never "ages".
KEY_CREATED_AT = "2024-01-01T00:00:00.000000"


class CreateTrunkBody(BaseModel):
    """The body shape; a mismatch is a FastAPI-style 422, as on the platform."""

    # strict: the platform's documented types are JSON types, so 5 is not "5".
    model_config = ConfigDict(strict=True)

    trunk_name: str = Field(min_length=1, max_length=100)
    trunk_type: Literal["twilio", "exotel"]
    trunk_config: dict[str, Any]


class FaultsBody(BaseModel):
    create: list[str]


@dataclass
class EmulatorState:
    """Everything one app instance remembers; reachable as app.state.emulator."""

    config: EmulatorConfig
    store: TrunkStore
    faults: FaultPicker
    stats: Stats


class DroppedConnection(Exception):
    """Raised on purpose after the response started, so uvicorn cuts the connection."""


class _DroppedResponse(Response):
    """Starts a 200 that promises more body than it sends, then fails.

    uvicorn cannot send a 500 once the status line is out, so it closes the
    socket: the client sees a truncated response, i.e. a transport error after
    the trunk was created ("outcome unknown").
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        partial = b'{"success": true'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
            }
        )
        await send({"type": "http.response.body", "body": partial, "more_body": True})
        raise DroppedConnection("emulator fault drop-after: connection dropped on purpose")


def create_app(config: EmulatorConfig) -> FastAPI:
    """A fresh emulator; its data file (if any) is loaded now."""
    # No docs routes: the emulator's surface is exactly the platform's plus /_emulator.
    app = FastAPI(title="trunksync emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator = EmulatorState(
        config=config,
        store=TrunkStore(config.data_file),
        faults=FaultPicker(config),
        stats=Stats(),
    )
    app.add_exception_handler(Exception, _unexpected_error)
    _add_platform_routes(app)
    _add_admin_routes(app)
    return app


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"success": False, "message": "Internal server error"}, status_code=500)


def _authorized_state(request: Request) -> EmulatorState:
    """The app state, or a 401 unless the request carries the right bearer key."""
    state: EmulatorState = request.app.state.emulator
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    # compare_digest on bytes: str arguments must be ASCII, a header need not be.
    expected = state.config.api_key.encode()
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), expected):
        raise HTTPException(
            status_code=401,
            detail="Invalid or missing API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return state


async def _latency(state: EmulatorState) -> None:
    if state.config.latency_ms:
        await asyncio.sleep(state.config.latency_ms / 1000)


async def _create_body(request: Request) -> CreateTrunkBody:
    """Parse the create body by hand so that auth is checked before the body.

    (A FastAPI body parameter would be parsed, and refused with 422, before any
    auth code ran.) Errors are raised as RequestValidationError, so FastAPI
    renders them exactly as it renders its own.
    """
    raw = await request.body()
    try:
        data = json.loads(raw)
    except ValueError as error:
        position = error.pos if isinstance(error, json.JSONDecodeError) else 0
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", position),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": str(error)},
                }
            ]
        ) from None
    try:
        return CreateTrunkBody.model_validate(data)
    except ValidationError as error:
        errors = [
            {**item, "loc": ("body", *item["loc"])}
            for item in error.errors(include_url=False, include_context=False)
        ]
        raise RequestValidationError(errors) from None


def _add_platform_routes(app: FastAPI) -> None:
    @app.post("/sip/create-outbound-trunk")
    async def create_outbound_trunk(request: Request) -> Response:
        state = _authorized_state(request)
        state.stats.create_calls += 1
        await _latency(state)
        try:
            body = await _create_body(request)
        except ClientDisconnect:
            # The client went away during the latency (a killed apply): nothing is
            # created and nobody reads an answer; not an error of the emulator's.
            return Response(status_code=499)
        problems = trunk_config_problems(body.trunk_type, body.trunk_config)
        if problems:
            raise HTTPException(status_code=400, detail="; ".join(problems))
        # Drawn only for valid requests, so a queued fault is never spent on a 400/422.
        fault = state.faults.next()
        if fault is not None:
            state.stats.faults_injected += 1
        if fault == "rate-limit":
            return JSONResponse(
                {"detail": "Too many requests"},
                status_code=429,
                headers={"Retry-After": str(state.config.retry_after_seconds)},
            )
        if fault == "error-before":
            return JSONResponse(CREATION_ERROR, status_code=500)
        record = state.store.create(body.trunk_name, body.trunk_type, body.trunk_config)
        state.stats.trunks_created += 1
        if fault == "error-after":
            return JSONResponse(CREATION_ERROR, status_code=500)
        if fault == "drop-after":
            return _DroppedResponse()
        if fault == "slow":
            await asyncio.sleep(state.config.slow_seconds)
        return JSONResponse(
            {"success": True, "message": CREATED_MESSAGE, "data": {"trunk_id": record.trunk_id}}
        )

    @app.get("/sip/list")
    async def list_trunks(request: Request) -> Response:
        state = _authorized_state(request)
        state.stats.list_calls += 1
        await _latency(state)
        trunks = [record.summary() for record in state.store.active()]
        # Encoded here, not returned as a dict: FastAPI's jsonable_encoder walks every
        # value in Python (~0.2 s for 10,000 trunks), json.dumps does it in C.
        document = {"success": True, "message": "Trunks retrieved successfully", "data": trunks}
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(body, media_type="application/json")  # as JSONResponse would

    @app.delete("/sip/deactivate/{trunk_id}")
    async def deactivate_trunk(trunk_id: str, request: Request) -> dict[str, Any]:
        state = _authorized_state(request)
        state.stats.deactivate_calls += 1
        await _latency(state)
        record = state.store.get(trunk_id)
        if record is None:
            raise HTTPException(status_code=404, detail="Trunk not found")
        if not record.active:
            raise HTTPException(status_code=400, detail="Trunk is already deactivated")
        state.store.deactivate(record)
        return {
            "success": True,
            "message": "Trunk deactivated successfully",
            "data": {"trunk_id": trunk_id},
        }

    @app.get("/auth/check-key")
    async def check_key(request: Request) -> dict[str, Any]:
        _authorized_state(request)
        return {
            "success": True,
            "message": "API key is valid",
            "data": {
                "user_name": "emulator",
                "org_name": "trunksync emulator",
                "user_email": "emulator@example.invalid",
                "created_at": KEY_CREATED_AT,
            },
        }


def _add_admin_routes(app: FastAPI) -> None:
    """Unauthenticated routes for tests: inspect trunks, queue faults, read stats."""

    def state_of(request: Request) -> EmulatorState:
        state: EmulatorState = request.app.state.emulator
        return state

    @app.get("/_emulator/trunks")
    async def all_trunks(request: Request) -> dict[str, Any]:
        return {"trunks": [record.to_json() for record in state_of(request).store.all()]}

    @app.post("/_emulator/faults")
    async def queue_faults(body: FaultsBody, request: Request) -> dict[str, Any]:
        faults = state_of(request).faults
        try:
            faults.push(body.create)
        except ValueError as error:
            raise HTTPException(status_code=400, detail=str(error)) from None
        return {"create": faults.pending()}

    @app.get("/_emulator/stats")
    async def stats(request: Request) -> dict[str, Any]:
        return asdict(state_of(request).stats)

    @app.post("/_emulator/reset")
    async def reset(request: Request) -> dict[str, Any]:
        state = state_of(request)
        state.store.clear()
        state.faults.reset()
        state.stats = Stats()
        return {"reset": True}
