"""The one registry of trunk types: everything the loader, the schema, the state
and the renderers need to know about a type, defined once per type.

Adding a type is one module that builds a TrunkTypeSpec and calls `register`
(see twilio.py and exotel.py), and its tests. `models.desired_file_model()`
builds the file's tagged union from whatever is registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, SecretStr

from trunksync.errors import TrunksyncError

# A type name is a bounded, plain word: it is printed, stored and used as a schema key.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_TYPE_NAME = 32


@dataclass(frozen=True)
class TrunkTypeSpec:
    """One trunk type: its `trunk_type` value, its trunk_config model, its secrets.

    `secret_fields` are the config fields held as SecretStr: never printed, never
    stored (only salted fingerprints), revealed in the create request alone. They
    are derived from the model unless given.
    """

    name: str
    config_model: type[BaseModel]
    description: str
    secret_fields: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        if not self.secret_fields:
            object.__setattr__(self, "secret_fields", _secret_fields_of(self.config_model))

    @property
    def title(self) -> str:
        """The name as a class-name prefix ('twilio' -> 'Twilio'), for the schema's $defs."""
        return "".join(part.capitalize() for part in self.name.replace("-", "_").split("_"))

    @property
    def config_fields(self) -> tuple[str, ...]:
        return tuple(self.config_model.model_fields)


_REGISTRY: dict[str, TrunkTypeSpec] = {}


def register(spec: TrunkTypeSpec) -> TrunkTypeSpec:
    """Add a type; refuses a bad name, a second spec for a name, or a field name that is
    secret in one type and not in another (the loader decides by field name)."""
    if not spec.name or len(spec.name) > MAX_TYPE_NAME or not set(spec.name) <= _NAME_CHARS:
        raise ValueError(f"trunk type name {spec.name!r}: 1 to {MAX_TYPE_NAME} of a-z 0-9 _ -")
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"trunk type {spec.name!r} is already registered")
    secret, public = secret_field_names(), _public_field_names()
    mine_public = set(spec.config_fields) - spec.secret_fields
    clash = (spec.secret_fields & public) | (mine_public & secret)
    if existing is None and clash:
        raise ValueError(f"trunk type {spec.name!r}: {sorted(clash)} secret in one type only")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a type (for tests that register one of their own)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> TrunkTypeSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise TrunksyncError(f"unknown trunk type {name!r} (known: {', '.join(names())})") from None


def names() -> tuple[str, ...]:
    """The registered type names, in registration order (twilio, exotel, then others)."""
    return tuple(_REGISTRY)


def specs() -> tuple[TrunkTypeSpec, ...]:
    return tuple(_REGISTRY.values())


def secret_field_names() -> frozenset[str]:
    """Every field name that is secret in some type (the loader's test, by name)."""
    return frozenset().union(*(spec.secret_fields for spec in _REGISTRY.values()))


def _public_field_names() -> frozenset[str]:
    return frozenset().union(
        *(set(spec.config_fields) - spec.secret_fields for spec in _REGISTRY.values())
    )


def _secret_fields_of(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, SecretStr)
    )


# The built-in types register themselves on import; the order is the docs' order.
from trunksync.trunk_types import twilio as twilio  # noqa: E402, I001
from trunksync.trunk_types import exotel as exotel  # noqa: E402
