"""Where the real data the tests read lives, inside this repository: the
demo's catalog and tables under config/demo/, the other portals' catalogs
under tests/data/ (one copy of each file; provenance in their READMEs)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo"
TABLES = DEMO / "tables"
_CATALOG_DIRS = (DEMO / "catalogs", ROOT / "tests" / "data" / "catalogs")


def catalog_file(name: str) -> Path:
    """The real catalog export ``name`` (e.g. ``shanghai.json``)."""
    for folder in _CATALOG_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no catalog export {name} under config/demo/catalogs or tests/data/catalogs")
