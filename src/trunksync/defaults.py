"""Defaults shared by the CLI and the library, in a module that imports nothing."""

DEFAULT_API_URL = "https://api-livekit-vyom.indusnettechnologies.com"
DEFAULT_FILE = "trunks.yaml"
DEFAULT_STATE = "state/trunks.json"
DEFAULT_PARALLELISM = 10
