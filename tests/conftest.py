import sys
from pathlib import Path

# The tests folder has no __init__.py; make its helper modules importable by name.
sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["emulator_fixtures"]
