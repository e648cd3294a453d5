"""The wheels an offline image build needs, downloaded from PyPI on the host for the base image's Python.

The base image itself says which wheels fit it (its pip's marker environment and platform tags), so the host
interpreter's version and glibc do not matter. The build verifies every file against uv.lock's hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from tests.support.docker import Docker

# pip's own view of the interpreter: what official python images and the local base image both ship
TARGET_PROBE = """
import json
from pip._vendor.packaging.markers import default_environment
from pip._vendor.packaging.tags import sys_tags
print(json.dumps({"markers": default_environment(), "tags": [str(tag) for tag in sys_tags()]}))
"""
PIP = "pip==25.3"


@dataclass(frozen=True)
class Target:
    markers: dict[str, str]
    tags: list[str]

    @property
    def python_version(self) -> str:
        return self.markers["python_version"]

    def _parts(self, index: int) -> list[str]:
        return list(dict.fromkeys(tag.split("-")[index] for tag in self.tags))

    def pip_platform_args(self) -> list[str]:
        """`pip download` options that select exactly the wheels this interpreter can install."""
        args = ["--only-binary=:all:", "--python-version", self.python_version.replace(".", "")]
        # the interpreter tag of the most specific tag, e.g. cp311 -> cp
        args += ["--implementation", self.tags[0].split("-")[0].rstrip("0123456789")]
        for abi in self._parts(1):
            args += ["--abi", abi]
        for platform in self._parts(2):
            args += ["--platform", platform]
        return args


def probe_target(docker: Docker, image: str) -> Target:
    raw = docker.output("run", "--rm", "--network", "none", image, "python", "-c", TARGET_PROBE)
    data: dict[str, Any] = json.loads(raw)
    return Target(markers=data["markers"], tags=data["tags"])


def locked_pins(uv: str, repo: Path, target: Target, package: str | None = None) -> list[str]:
    """`name==version` of every locked package the target installs (markers evaluated for the target);
    with ``package``, only that workspace member's dependencies."""
    only = ["--package", package, "--no-emit-workspace"] if package else []
    export = subprocess.run(
        [
            uv,
            "export",
            *only,
            "--locked",
            "--no-dev",
            "--no-emit-project",
            "--no-emit-local",
            "--no-hashes",
            "--no-annotate",
            "--no-header",
            "--format",
            "requirements-txt",
            "--quiet",
        ],
        cwd=repo,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if export.returncode != 0:
        raise AssertionError(f"uv export in {repo} failed:\n{export.stderr[-3000:]}")
    pins = []
    for line in export.stdout.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(target.markers):
            pins.append(f"{requirement.name}{requirement.specifier}")
    return pins


def clean_env() -> dict[str, str]:
    # no workspace venv, no machine-wide find-links or extra indexes (their files may differ from the
    # locked ones), no interpreter downloads (only PyPI is reachable)
    drop = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PYENV_VERSION")
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(UV_PYTHON_DOWNLOADS="never", PIP_CONFIG_FILE=os.devnull)
    return env


def download(
    uv: str, target: Target, requirements: list[str], dest: Path, cache: Path, *, deps: bool
) -> None:
    args = [uv, "tool", "run", "--from", PIP, "pip", "download", "--quiet", "--dest", str(dest)]
    args += ["--cache-dir", str(cache), *target.pip_platform_args()]
    if not deps:
        args.append("--no-deps")
    result = subprocess.run(
        [*args, *requirements], env=clean_env(), capture_output=True, text=True, check=False, timeout=900
    )
    if result.returncode != 0:
        raise AssertionError(
            f"pip download into {dest} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        )


def wheelhouse(
    uv: str, target: Target, pins: list[str], tools: list[str], folder: Path, cache: Path
) -> tuple[Path, str]:
    """The wheels of ``pins`` (exactly) and ``tools`` (with their dependencies) for ``target``, downloaded
    once per set into a subfolder of ``folder`` named by the set's key; other sets are of no further use."""
    key = hashlib.sha256(json.dumps([pins, tools, target.pip_platform_args()]).encode()).hexdigest()[:16]
    house = folder / key
    if not (house / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        download(uv, target, pins, house, cache, deps=False)
        download(uv, target, tools, house, cache, deps=True)
        (house / ".complete").touch()
    return house, key
