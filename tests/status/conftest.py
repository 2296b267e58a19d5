"""Status tests reuse the store fixtures: a real SQLite file and the local BigQuery server.

The fixtures live in tests/stores/conftest.py; they are loaded here under another module
name so the same parametrised ``store`` runs these tests on both stores.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_STORES = Path(__file__).resolve().parents[1] / "stores"
if str(_STORES) not in sys.path:
    sys.path.insert(0, str(_STORES))

_spec = importlib.util.spec_from_file_location(
    "_friendscrape_store_fixtures", _STORES / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

bq_emulator = _fixtures.bq_emulator
bq_dataset = _fixtures.bq_dataset
store_settings = _fixtures.store_settings
store = _fixtures.store
