"""The repository stands alone: nothing reads a data folder beside it, and
the unit tier passes from a copy of the repository in an empty folder, with
the demo data and fixtures it ships."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A path that leaves the repository for a sibling data folder.
OUTSIDE = re.compile(r"\.\./shared|\.parent\s*/\s*[\"']shared[\"']|[\"']shared[\"']\s*/\s*[\"']data[\"']")
# Provenance notes may name where a file was copied from.
PROVENANCE = {"config/demo/README.md", "tests/data/README.md"}


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        # Not a git checkout: the copy the last test below makes of the
        # tracked files, where every file is one of them.
        return sorted(path.relative_to(ROOT).as_posix() for path in ROOT.rglob("*")
                      if path.is_file() and "__pycache__" not in path.parts)
    return [name for name in listed.stdout.decode().split("\0") if name]


def test_no_file_reads_a_folder_beside_the_repository():
    offenders = []
    for name in tracked_files():
        if name in PROVENANCE or not (ROOT / name).is_file():
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}: {match.group(0)}" for match in OUTSIDE.finditer(text)]
    assert offenders == []


def test_demo_and_fixture_files_ship_with_their_provenance():
    files = set(tracked_files())
    for folder in ("config/demo/catalogs", "config/demo/tables", "tests/data/catalogs"):
        shipped = [name for name in files if name.startswith(folder + "/")]
        assert shipped, f"nothing shipped under {folder}"
        readme = (ROOT / folder).parent / "README.md"
        notes = readme.read_text(encoding="utf-8")
        for name in shipped:
            assert f"`{Path(name).name}`" in notes, f"{name} has no provenance in {readme}"


def test_unit_tier_passes_from_a_copy_with_nothing_beside_it(tmp_path):
    # The working tree's tracked files (what a clone would hold), in a folder
    # whose parent holds nothing else.
    copy = tmp_path / "alone" / "portal"
    for name in tracked_files():
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    assert sorted(p.name for p in copy.parent.iterdir()) == ["portal"]
    result = subprocess.run(
        # This module reads the checkout's git index: it is not run in the copy.
        [sys.executable, "-m", "pytest", "tests/unit", "-q", "-x", "--ignore", "tests/unit/test_stands_alone.py",
         f"--ckan-ini={os.environ['CKAN_INI']}"],
        cwd=copy, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
