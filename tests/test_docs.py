"""The README and the manual: short, free of the developers' private references, and
buildable with ``mkdocs build --strict`` (which also checks every link and anchor)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 300

# What a user's page must not point at: the developers' data folders, design files that are
# not in the repository, tracker issue numbers.
FORBIDDEN = {
    "the developers' data folder ../shared": re.compile(r"\.\./shared"),
    "DESIGN.md": re.compile(r"DESIGN\.md"),
    "design notes": re.compile(r"design notes", re.IGNORECASE),
    "an issue number": re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE),
}


def user_pages() -> list[Path]:
    """README.md and every Markdown page of the manual."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def forbidden_in(text: str) -> list[str]:
    """Names of the FORBIDDEN patterns that occur in ``text``."""
    return [name for name, pattern in FORBIDDEN.items() if pattern.search(text)]


@pytest.mark.parametrize("page", user_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_page_has_no_private_reference(page: Path) -> None:
    found = forbidden_in(page.read_text(encoding="utf-8"))
    assert not found, f"{page.relative_to(ROOT)} mentions {', '.join(found)}"


def test_forbidden_patterns_match_what_they_name() -> None:
    assert forbidden_in("see ../shared/data/mitdb") == ["the developers' data folder ../shared"]
    assert forbidden_in("as DESIGN.md says") == ["DESIGN.md"]
    assert forbidden_in("the goals of issue 11") == ["an issue number"]
    assert forbidden_in("Issues #3 and 4") == ["an issue number"]
    assert forbidden_in("DATA/mitdb, an issue with flutter, 11 records") == []


def test_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_links_exist() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "README.md links to no page of the manual"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    missing = [name for name in ("mkdocs", "material", "mkdocstrings")
               if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    # the reference is generated from the docstrings: the entry points must be in it
    for name in ("afdetect.api.load", "afdetect.api.scan", "afdetect.io.records.read_record"):
        assert f'id="{name}"' in api, f"{name} is missing from the API reference"
    for page in site.rglob("*.html"):
        found = forbidden_in(page.read_text(encoding="utf-8"))
        assert not found, f"{page.relative_to(site)} mentions {', '.join(found)}"
