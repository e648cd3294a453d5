"""Fail on what a template update can leave behind: conflict markers, .rej files, unmerged paths, and a repo
that is not linked to its template (no .cruft.json). Stdlib only: runs before `uv sync`.

Usage: python3 scripts/check_template_update.py   (pre-commit, CI and `make update` run it)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRUFT_FILE = ROOT / ".cruft.json"
# git's conflict markers (merge and `git apply -3`): 7 characters at the start of a line, then a space or
# the end of the line. `=======` alone is left out: it is also a Markdown heading underline.
MARKER_RE = re.compile(rb"^(<{7}|>{7}|\|{7})( |$)", re.MULTILINE)
NOT_SCANNED = {".git", ".venv", "node_modules", "__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache"}


def _git(*args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    # fixed argv: read-only git queries on this repository
    result = subprocess.run(  # noqa: S603
        [git, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def candidate_files() -> list[Path]:
    """Tracked and untracked files, minus what .gitignore ignores (every file outside a git repo)."""
    listed = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z")
    if listed is not None:
        return sorted({ROOT / name for name in listed.split("\0") if name})
    return sorted(
        path
        for path in ROOT.rglob("*")
        if path.is_file() and not NOT_SCANNED.intersection(path.relative_to(ROOT).parts)
    )


def unmerged_paths() -> list[str]:
    listed = _git("diff", "--name-only", "--diff-filter=U")
    return sorted(set(listed.split())) if listed else []


def conflict_problems(files: list[Path]) -> list[str]:
    problems = [
        f"{name}: unmerged (a conflict from a template update or merge): resolve it, then `git add {name}`"
        for name in unmerged_paths()
    ]
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        if path.suffix == ".rej":
            problems.append(
                f"{name}: hunks `cruft update` could not apply: apply them to {name[:-4]} by hand, "
                "then delete this file"
            )
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue  # a tracked file deleted in the working tree
        if b"\0" in data[:8192]:
            continue  # binary
        for match in MARKER_RE.finditer(data):
            line = data.count(b"\n", 0, match.start()) + 1
            problems.append(f"{name}:{line}: conflict marker {match.group(1).decode()}: resolve the conflict")
    return problems


def link_problems() -> list[str]:
    if CRUFT_FILE.is_file():
        return []
    return [
        ".cruft.json: missing, so the repo cannot take template updates: link it to the template with "
        "`make link TEMPLATE=<template git URL> CHECKOUT=<release tag>` and commit .cruft.json"
    ]


def main() -> int:
    problems = conflict_problems(candidate_files()) + link_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} template update problem(s): fix them, then run this again.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
