"""The repository stands on its own: what the code and docs cite is a file the repository contains."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("engine", "actors", "pipelines", "cli", "config", "sandbox", "docs", "tests", "bench", "deploy")
SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml"}
#: Documents that live outside the repository, as code and docs used to cite them.
OUTSIDE = re.compile(r"CONTRACT\.md|ARCHITECTURE\.md|\.\./shared|\bthe\s+contract\b")
DOC_PATH = re.compile(r"\bdocs/[\w./-]+\.(?:md|json)\b")
MD_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def _files() -> list[Path]:
    found = [ROOT / "README.md"]
    for top in SOURCES:
        found += [p for p in (ROOT / top).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return [p for p in found if p != Path(__file__).resolve()]


def test_nothing_cites_a_document_outside_the_repository() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_every_cited_docs_file_exists() -> None:
    missing = []
    for path in _files():
        text = path.read_text(encoding="utf-8")
        for cited in DOC_PATH.findall(text):
            if not (ROOT / cited).exists():
                missing.append(f"{path.relative_to(ROOT)}: {cited}")
        if path.suffix == ".md":
            for link in MD_LINK.findall(text):
                if not link.startswith("http") and not (path.parent / link).resolve().exists():
                    missing.append(f"{path.relative_to(ROOT)}: {link}")
    assert not missing, "\n".join(missing)
