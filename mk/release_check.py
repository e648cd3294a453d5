"""Release consistency: the template version, the SDK's and the stand-ins' versions, the SDK range generated
repos pin, the CHANGELOG and the git tags agree. `make release-check [TAG=vX.Y.Z]` runs it (the release
workflow with the pushed tag); tests/test_release.py holds the repository to it. Standard library only: it
runs before any install.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION_RE = re.compile(r"\d+\.\d+\.\d+")
# (what, file, the pattern whose group 1 is the version)
VERSION_SOURCES = (
    ("livekit-platform-sdk", "sdk/pyproject.toml", r'^version = "([^"]+)"'),
    (
        "livekit_platform_sdk.__version__",
        "sdk/src/livekit_platform_sdk/__init__.py",
        r'^__version__ = "([^"]+)"',
    ),
    ("livekit-platform-testing", "testing/pyproject.toml", r'^version = "([^"]+)"'),
    (
        "livekit_platform_testing.__version__",
        "testing/src/livekit_platform_testing/__init__.py",
        r'^__version__ = "([^"]+)"',
    ),
)
RELEASE_HEADING_RE = re.compile(r"^## (\d+\.\d+\.\d+)$", re.MULTILINE)


def versions(root: Path) -> dict[str, str]:
    """Every place a release's version is written, by what it is."""
    questions = json.loads((root / "cookiecutter.json").read_text(encoding="utf-8"))
    found = {"_template_version (cookiecutter.json)": str(questions["_template_version"])}
    for what, relative, pattern in VERSION_SOURCES:
        match = re.search(pattern, (root / relative).read_text(encoding="utf-8"), re.MULTILINE)
        found[f"{what} ({relative})"] = match.group(1) if match else "<missing>"
    return found


def expected_range(version: str) -> str:
    """The range a template release pins: the SDK's minor while it is 0.x, its major from 1.0 on."""
    major, minor, _ = (int(part) for part in version.split("."))
    return f">={major}.{minor},<{major}.{minor + 1}" if major == 0 else f">={major}.{minor},<{major + 1}"


def git_tags(root: Path) -> list[str]:
    """The repository's `v*` tags (none outside a git checkout, or in a clone made without them)."""
    listed = subprocess.run(  # noqa: S603 (fixed arguments)
        ["git", "-C", str(root), "tag", "--list", "v*"],  # noqa: S607 (git from PATH)
        capture_output=True,
        text=True,
        check=False,
    )
    return listed.stdout.split() if listed.returncode == 0 else []


def problems(root: Path, tag: str | None = None, tags: list[str] | None = None) -> list[str]:
    """One line per disagreement, each naming the file to fix; empty when the release is consistent."""
    found = versions(root)
    version = found["_template_version (cookiecutter.json)"]
    lines = [
        f"{where} is {value}, but _template_version (cookiecutter.json) is {version}: release them together"
        for where, value in found.items()
        if value != version
    ]
    if not VERSION_RE.fullmatch(version):
        return [*lines, f"_template_version (cookiecutter.json) {version!r} is not X.Y.Z"]
    questions = json.loads((root / "cookiecutter.json").read_text(encoding="utf-8"))
    pinned, wanted = str(questions["_sdk_version_range"]), expected_range(version)
    if pinned != wanted:
        lines.append(
            f"_sdk_version_range (cookiecutter.json) is {pinned!r}; release {version} pins {wanted!r}"
        )
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    released = RELEASE_HEADING_RE.findall(changelog)
    if not released or released[0] != version:
        newest = released[0] if released else "none"
        lines.append(f"CHANGELOG.md: the newest `## X.Y.Z` section is {newest}; add `## {version}` above it")
    else:
        section = changelog.split(f"\n## {version}\n", 1)[1].split("\n## ", 1)[0]
        for needed in (f"livekit-platform-sdk {version}", f"`{wanted}`", "### Upgrading"):
            if needed not in section:
                lines.append(f"CHANGELOG.md: the {version} section does not state {needed}")
    for listed in tags if tags is not None else git_tags(root):
        named = listed.removeprefix("v")
        if named not in released:
            lines.append(f"git tag {listed} names no CHANGELOG.md section: add `## {named}`")
    if tag is not None:
        if tag != f"v{version}":
            lines.append(f"the tag {tag} is not v{version} (_template_version): tag the release v{version}")
        if re.search(r"^## Unreleased", changelog, re.MULTILINE):
            lines.append("CHANGELOG.md still has an `## Unreleased` section: fold it into the release's")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tag", help="the release tag being published (vX.Y.Z)")
    args = parser.parse_args(argv)
    found = problems(ROOT, args.tag)
    for line in found:
        print(f"release-check: {line}", file=sys.stderr)
    if not found:
        print(f"release-check: {versions(ROOT)['_template_version (cookiecutter.json)']} is consistent")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
