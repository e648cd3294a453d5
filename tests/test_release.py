"""A release is one version: the template, the SDK, its stand-ins, the SDK range generated repos pin, the
CHANGELOG and the git tags agree (mk/release_check.py, which `make release-check` and the release workflow
run); the workflow publishes through the make targets the template tests run against a real index."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"


def load_release_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release_check", REPO / "mk" / "release_check.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release_check = load_release_check()
VERSION = json.loads((REPO / "cookiecutter.json").read_text())["_template_version"]


def test_this_checkout_is_one_consistent_release_and_every_tag_has_a_changelog_entry() -> None:
    assert release_check.problems(REPO) == []
    for tag in release_check.git_tags(REPO):
        assert f"\n## {tag.removeprefix('v')}\n" in (REPO / "CHANGELOG.md").read_text(), tag


def test_make_release_check_passes_and_names_the_version() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "release-check"], cwd=REPO, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"release-check: {VERSION} is consistent" in done.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The files the check reads, in a folder of their own to break."""
    for name in ("cookiecutter.json", "CHANGELOG.md", "sdk/pyproject.toml", "testing/pyproject.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / name)
    for init in (
        "sdk/src/livekit_platform_sdk/__init__.py",
        "testing/src/livekit_platform_testing/__init__.py",
    ):
        (tmp_path / init).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / init, tmp_path / init)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


NEXT = f"{VERSION.rsplit('.', 1)[0]}.{int(VERSION.rsplit('.', 1)[1]) + 1}"
BREAKS = [
    (
        "sdk/pyproject.toml",
        f'version = "{VERSION}"',
        f'version = "{NEXT}"',
        "livekit-platform-sdk (sdk/pyproject.toml)",
    ),
    (
        "sdk/src/livekit_platform_sdk/__init__.py",
        f'__version__ = "{VERSION}"',
        f'__version__ = "{NEXT}"',
        "livekit_platform_sdk.__version__",
    ),
    ("testing/pyproject.toml", f'version = "{VERSION}"', f'version = "{NEXT}"', "livekit-platform-testing"),
    (
        "testing/src/livekit_platform_testing/__init__.py",
        f'__version__ = "{VERSION}"',
        f'__version__ = "{NEXT}"',
        "livekit_platform_testing.__version__",
    ),
    ("cookiecutter.json", '"_sdk_version_range": ">=', '"_sdk_version_range": ">0', "_sdk_version_range"),
    ("CHANGELOG.md", f"\n## {VERSION}\n", "\n## Next\n", f"add `## {VERSION}`"),
    (
        "CHANGELOG.md",
        f"livekit-platform-sdk {VERSION}",
        "the SDK",
        f"does not state livekit-platform-sdk {VERSION}",
    ),
]


@pytest.mark.parametrize(("relative", "old", "new", "named"), BREAKS, ids=[b[3][:30] for b in BREAKS])
def test_each_disagreement_is_named_with_the_file_to_fix(
    copy: Path, relative: str, old: str, new: str, named: str
) -> None:
    edit(copy / relative, old, new)

    found = release_check.problems(copy, tags=[])

    assert len(found) == 1, found
    assert named in found[0]


def test_a_tag_without_a_changelog_entry_and_a_wrong_release_tag_are_refused(copy: Path) -> None:
    assert release_check.problems(copy, tags=[f"v{VERSION}"]) == []
    assert release_check.problems(copy, tags=["v0.0.9"]) == [
        "git tag v0.0.9 names no CHANGELOG.md section: add `## 0.0.9`"
    ]
    assert release_check.problems(copy, tag=f"v{NEXT}", tags=[]) == [
        f"the tag v{NEXT} is not v{VERSION} (_template_version): tag the release v{VERSION}"
    ]
    edit(copy / "CHANGELOG.md", f"\n## {VERSION}\n", f"\n## Unreleased\n\n- more\n\n## {VERSION}\n")
    assert release_check.problems(copy, tags=[]) == [], "between releases an Unreleased section is fine"
    assert release_check.problems(copy, tag=f"v{VERSION}", tags=[]) == [
        "CHANGELOG.md still has an `## Unreleased` section: fold it into the release's"
    ]


def test_the_release_workflow_runs_on_version_tags_through_the_make_targets_with_the_feed_from_secrets() -> (
    None
):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    publish = next(step for step in job["steps"] if step.get("run") == "make release-publish")
    lint = subprocess.run(
        [str(REPO / ".tools" / "bin" / "actionlint"), str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # PyYAML reads the `on:` key as True
    assert workflow["permissions"] == {"contents": "read"}
    assert runs == ['make release-check TAG="$GITHUB_REF_NAME"', "make release-build", "make release-publish"]
    assert publish["env"]["PUBLISH_URL"] == "${{ secrets.PACKAGE_FEED_UPLOAD_URL }}"
    assert publish["env"]["UV_PUBLISH_PASSWORD"] == "${{ secrets.PACKAGE_FEED_TOKEN }}"
    assert not any("secrets." in run for run in runs), "secrets reach uv through the environment only"
    makefile = (REPO / "mk" / "release.mk").read_text()
    for target in ("release-check", "release-build", "release-publish"):
        assert re.search(rf"^{target}: .*## ", makefile, re.MULTILINE), target
    assert "--package livekit-platform-sdk" in makefile
    assert "--package livekit-platform-testing" in makefile


def test_the_checker_runs_on_the_standard_library_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(REPO / "mk" / "release_check.py")], capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
