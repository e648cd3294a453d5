"""A throwaway git repository of the template, released as tagged versions, and git helpers for projects."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.paths import REPO

TEMPLATE_DIR = "{{cookiecutter.agent_slug}}"
# What cookiecutter and the post-gen hook read: questions, the Jinja extension, hooks, the generated repo, the
# packages it vendors.
TEMPLATE_INPUTS = ("cookiecutter.json", "agent_template_jinja.py", "hooks", TEMPLATE_DIR, "sdk", "testing")
CACHES = shutil.ignore_patterns(
    "__pycache__",
    "*.pyc",
    ".venv",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "dist",
    "build",
    "*.egg-info",
)
# A fixed identity and no user/system config: commits work on a bare CI machine and never sign.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "template-tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "template-tests@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in cwd; a failure shows git's own message."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)} failed in {cwd}:\n{result.stdout}{result.stderr}"
    return result.stdout


def commit_all(repo: Path, message: str) -> str:
    """Stage everything, commit it and return the commit's hash."""
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--no-gpg-sign", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def init_project(project: Path, message: str = "Generate from the agent template") -> str:
    """What the onboarding text asks a team to do first: git init and commit the generated files untouched."""
    git(project, "init", "--quiet", "--initial-branch=main")
    return commit_all(project, message)


class TemplateRepo:
    """A copy of this checkout's template in its own git repository, where tests cut releases."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def first_release(cls, path: Path, version: str = "0.1.0") -> TemplateRepo:
        path.mkdir(parents=True)
        for name in TEMPLATE_INPUTS:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, path / name, ignore=CACHES)
            else:
                shutil.copy2(source, path / name)
        # Python caches the Jinja extension it imports from the template folder: never part of a release
        (path / ".gitignore").write_text("__pycache__/\n", encoding="utf-8")
        git(path, "init", "--quiet", "--initial-branch=main")
        template = cls(path)
        template.release(version)
        return template

    @classmethod
    def whole_checkout(cls, path: Path, version: str) -> TemplateRepo:
        """This whole checkout as it is on disk (tracked and new files, not ignored ones) in a repository of
        its own, released as `version`: what a team clones, and uv clones the SDK from, at a release tag."""
        listed = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            source = REPO / name
            if source.is_file() and not source.is_symlink():
                (path / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, path / name)
        git(path, "init", "--quiet", "--initial-branch=main")
        template = cls(path)
        template.release(version)
        return template

    @property
    def generated(self) -> Path:
        """The generated repo's folder inside the template."""
        return self.path / TEMPLATE_DIR

    def edit(self, relative: str, change: Callable[[str], str]) -> None:
        file = self.path / relative
        before = file.read_text(encoding="utf-8")
        after = change(before)
        assert after != before, f"the edit of {relative} changed nothing"
        file.write_text(after, encoding="utf-8")

    def release(self, version: str) -> str:
        """Set `_template_version`, commit everything and tag it vX.Y.Z; returns the commit."""
        self.edit_if_needed(
            "cookiecutter.json",
            lambda text: re.sub(r'"_template_version": "[^"]*"', f'"_template_version": "{version}"', text),
        )
        commit = commit_all(self.path, f"Release {version}")
        git(self.path, "tag", "-a", f"v{version}", "-m", f"Agent template {version}")
        return commit

    def edit_if_needed(self, relative: str, change: Callable[[str], str]) -> None:
        file = self.path / relative
        file.write_text(change(file.read_text(encoding="utf-8")), encoding="utf-8")
