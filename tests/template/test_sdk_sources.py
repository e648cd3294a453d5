"""Each SDK source resolves for a real team, from a real release of this checkout.

- `git` (the default): the getting-started commands, run as the page gives them, create a repo from a release
  tag of a git copy of this whole checkout; `make setup && make test` pass there, the SDK and its stand-ins
  cloned by uv from that tag. No feed, no vendoring.
- `package`: the release workflow's own steps build the SDK and its stand-ins and publish them to a real
  package index (pypiserver) started here; a repo pointed at it passes `make setup && make test`. With a
  second index playing the public one (uv's default index, PyPI behind it) holding a higher-versioned impostor
  `livekit-platform-sdk`, the lock takes the feed's package while the feed is up and fails while it is down;
  without the pinning the same lock takes the impostor, so the check can fail.

Package downloads come from PyPI (uv's cache keeps them fast after a first run); the rest is loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

from demo.processes import free_port
from tests.support.baking import REQUIRED_ANSWERS
from tests.support.generated_repo import generated_env
from tests.support.paths import REPO
from tests.support.template_repo import GIT_ENV, TemplateRepo, git
from tests.support.tools import uv_binary

VERSION: str = json.loads((REPO / "cookiecutter.json").read_text())["_template_version"]
SLUG = "support-assistant"
PUBLISHER = ("release-bot", "feed-token-for-tests")
IMPOSTOR_VERSION = f"{VERSION.rsplit('.', 1)[0]}.99"


def section(markdown: str, heading: str) -> str:
    """The text under a `## heading` up to the next `## `."""
    start = markdown.index(f"\n## {heading}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else len(markdown)]


def shell_lines(markdown: str) -> list[str]:
    """The commands of the ```sh blocks, as a reader copies them (comments after two spaces dropped)."""
    blocks = re.findall(r"^```sh\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def run(args: list[str], cwd: Path, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env={**generated_env(), **GIT_ENV, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def lock_entry(repo: Path, name: str) -> dict[str, Any]:
    lock = tomllib.loads((repo / "uv.lock").read_text())
    (entry,) = [package for package in lock["package"] if package["name"] == name]
    return dict(entry)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    """This checkout, as a git repository released as this version (tag v<_template_version>)."""
    return TemplateRepo.whole_checkout(tmp_path_factory.mktemp("release") / "agent-template", VERSION)


@pytest.mark.timeout(1200)
def test_the_getting_started_commands_give_a_repo_that_passes_its_checks_with_the_sdk_from_the_git_tag(
    release: TemplateRepo, tmp_path: Path
) -> None:
    page = (REPO / "docs" / "getting-started.md").read_text()
    commands = shell_lines(section(page, "1. Generate the agent repo"))
    create = "uvx --from cruft==2.16.0 cruft create <template git URL> --checkout vX.Y.Z"
    assert commands[0] == create, "the page starts with the one way to create a repo"
    assert commands[1:] == [
        'cd <agent_slug> && git init && git add -A && git commit -m "Generate from agent template vX.Y.Z"',
        "make setup",
        "make test",
    ]
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(REQUIRED_ANSWERS))  # only the required answers: every choice at its default
    script = [
        line.replace("<template git URL>", str(release.path))
        .replace("vX.Y.Z", f"v{VERSION}")
        .replace("<agent_slug>", SLUG)
        for line in commands
    ]
    # cruft asks the questions on a terminal; a file answers them (reference/template-questions.md says how)
    script[0] += f" --no-input --extra-context-file {answers}"

    done = run(["bash", "-euo", "pipefail", "-c", "\n".join(script)], tmp_path, timeout=1100)

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    repo = tmp_path / SLUG
    tag_commit = git(release.path, "rev-parse", f"v{VERSION}^{{commit}}").strip()
    for name, folder in (("livekit-platform-sdk", "sdk"), ("livekit-platform-testing", "testing")):
        entry = lock_entry(repo, name)
        assert entry["version"] == VERSION
        assert entry["source"] == {
            "git": f"{release.path.as_uri()}?subdirectory={folder}&tag=v{VERSION}#{tag_commit}"
        }, "cloned from the release tag, nothing vendored, no feed"
    assert not (repo / "vendor").exists()
    assert "passed" in done.stdout


class PackageIndex:
    """A pypiserver on loopback serving ``packages``; uploads need the htpasswd user, reads are anonymous."""

    def __init__(self, root: Path, *, fallback: bool) -> None:
        self.packages = root / "packages"
        self.packages.mkdir(parents=True)
        self.passwords = root / "htpasswd"
        # htpasswd's {SHA} scheme, which pypiserver's passlib reads
        digest = base64.b64encode(hashlib.sha1(PUBLISHER[1].encode()).digest()).decode()  # noqa: S324
        self.passwords.write_text(f"{PUBLISHER[0]}:{{SHA}}{digest}\n")
        self.port = free_port()
        self.fallback = fallback
        self.log = root / "pypiserver.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def simple(self) -> str:
        return f"{self.url}simple/"

    def start(self) -> None:
        server = Path(sys.executable).parent / "pypi-server"
        args = [str(server), "run", "-i", "127.0.0.1", "-p", str(self.port)]
        args += ["-a", "update", "-P", str(self.passwords), "--log-file", str(self.log)]
        # the public stand-in sends what it lacks on to PyPI, as a mirror of the public index would
        args += [] if self.fallback else ["--disable-fallback"]
        self.process = subprocess.Popen([*args, str(self.packages)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.simple, timeout=2):  # noqa: S310 (loopback)
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"pypiserver did not answer at {self.simple}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def files(self, project: str) -> list[str]:
        with urllib.request.urlopen(f"{self.simple}{project}/", timeout=5) as page:  # noqa: S310 (loopback)
            return sorted(re.findall(r">([^<]+)</a>", page.read().decode()))


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    index = PackageIndex(tmp_path_factory.mktemp("feed"), fallback=False)
    index.start()
    yield index
    index.stop()


def workflow_steps() -> list[dict[str, Any]]:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "release.yml").read_text())
    (job,) = workflow["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def expand(value: str, settings: dict[str, str]) -> str:
    """A workflow expression (`${{ secrets.X }}`, `${{ vars.X || 'default' }}`) with the repo's settings."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        return settings.get(name) or (default or "")

    return re.sub(r"\$\{\{\s*(?:secrets|vars)\.(\w+)(?:\s*\|\|\s*'([^']*)')?\s*\}\}", one, value)


@pytest.fixture(scope="module")
def published(release: TemplateRepo, feed: PackageIndex) -> PackageIndex:
    """The release workflow's make steps, run in the release's checkout as the workflow runs them."""
    settings = {
        "PACKAGE_FEED_UPLOAD_URL": feed.url,
        "PACKAGE_FEED_USERNAME": PUBLISHER[0],
        "PACKAGE_FEED_TOKEN": PUBLISHER[1],
    }
    steps = [step for step in workflow_steps() if str(step.get("run", "")).startswith("make release-")]
    assert [step["run"].split()[1] for step in steps] == ["release-check", "release-build", "release-publish"]
    for step in steps:
        env = {name: expand(str(value), settings) for name, value in step.get("env", {}).items()}
        done = run(
            ["bash", "-euo", "pipefail", "-c", step["run"]],
            release.path,
            600,
            GITHUB_REF_NAME=f"v{VERSION}",
            **env,
        )
        assert done.returncode == 0, f"{step['run']}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        assert PUBLISHER[1] not in done.stdout + done.stderr, "the token is never printed"
    return feed


def test_the_release_workflow_publishes_wheel_and_sdist_of_the_sdk_and_its_stand_ins(
    published: PackageIndex,
) -> None:
    for project, stem in (
        ("livekit-platform-sdk", "livekit_platform_sdk"),
        ("livekit-platform-testing", "livekit_platform_testing"),
    ):
        assert published.files(project) == [f"{stem}-{VERSION}-py3-none-any.whl", f"{stem}-{VERSION}.tar.gz"]


def test_publishing_without_the_feed_url_says_what_it_needs(release: TemplateRepo) -> None:
    done = run(["make", "release-publish"], release.path, 120, PUBLISH_URL="")

    assert done.returncode != 0
    assert "make release-publish needs PUBLISH_URL=<the feed's upload URL>" in done.stderr


@pytest.fixture(scope="module")
def package_repo(
    release: TemplateRepo, published: PackageIndex, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`cruft create` from the release tag with sdk_source=package, pointed at the feed."""
    out = tmp_path_factory.mktemp("package-bake")
    answers = out / "answers.json"
    answers.write_text(
        json.dumps({**REQUIRED_ANSWERS, "sdk_source": "package", "sdk_index_url": published.simple})
    )
    created = run(
        [sys.executable, "-m", "cruft", "create", str(release.path), "--checkout", f"v{VERSION}",
         "--no-input", "--extra-context-file", str(answers)],
        out,
        timeout=300,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
    return out / SLUG


@pytest.mark.timeout(1200)
def test_a_repo_on_the_feed_passes_make_setup_and_make_test(
    package_repo: Path, published: PackageIndex
) -> None:
    for target in ("setup", "test"):
        made = run(["make", target], package_repo, timeout=900)
        assert made.returncode == 0, f"make {target}:\n{made.stdout[-6000:]}{made.stderr[-3000:]}"

    for name in ("livekit-platform-sdk", "livekit-platform-testing"):
        entry = lock_entry(package_repo, name)
        assert (entry["version"], entry["source"]) == (VERSION, {"registry": published.simple})


def impostor_wheel(where: Path) -> Path:
    """A `livekit-platform-sdk` inside the pinned range with a higher version than the real one."""
    project = where / "impostor"
    (project / "src" / "livekit_platform_sdk").mkdir(parents=True)
    (project / "src" / "livekit_platform_sdk" / "__init__.py").write_text("IMPOSTOR = True\n")
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "livekit-platform-sdk"\nversion = "{IMPOSTOR_VERSION}"\n'
        "[project.optional-dependencies]\nopenai = []\nsilero = []\n"
        '[build-system]\nrequires = ["hatchling>=1.25"]\nbuild-backend = "hatchling.build"\n'
    )
    built = run([uv_binary(), "build", "--wheel", "--out-dir", str(where / "dist")], project, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (where / "dist").glob("*.whl")
    return wheel


def lock(repo: Path, public: PackageIndex) -> subprocess.CompletedProcess[str]:
    # fresh answers for the two packages: never what an earlier lock cached
    refresh = ["--refresh-package", "livekit-platform-sdk", "--refresh-package", "livekit-platform-testing"]
    return run([uv_binary(), "lock", *refresh], repo, timeout=600, UV_DEFAULT_INDEX=public.simple)


@pytest.mark.timeout(1500)
def test_an_impostor_on_the_public_index_is_never_taken(
    package_repo: Path, published: PackageIndex, tmp_path: Path
) -> None:
    public = PackageIndex(tmp_path / "public", fallback=True)
    shutil.copy2(impostor_wheel(tmp_path), public.packages)
    public.start()
    repo = tmp_path / "repo"
    shutil.copytree(package_repo, repo, ignore=shutil.ignore_patterns(".venv", "uv.lock"))
    try:
        # the feed up: its package, not the higher-versioned one on the default index
        up = lock(repo, public)
        assert up.returncode == 0, up.stderr[-4000:]
        sdk = lock_entry(repo, "livekit-platform-sdk")
        assert (sdk["version"], sdk["source"]) == (VERSION, {"registry": published.simple})

        # the same lock without the SDK's pinning takes the impostor: the public index does offer it
        unpinned = tmp_path / "unpinned"
        shutil.copytree(repo, unpinned)
        pyproject = unpinned / "pyproject.toml"
        text = pyproject.read_text()
        pinned = 'livekit-platform-sdk = { index = "livekit-platform" }\n'
        assert pinned in text
        pyproject.write_text(text.replace(pinned, ""))
        (unpinned / "uv.lock").unlink()
        control = lock(unpinned, public)
        assert control.returncode == 0, control.stderr[-4000:]
        assert lock_entry(unpinned, "livekit-platform-sdk")["version"] == IMPOSTOR_VERSION

        # the feed down: the lock fails, naming the feed, rather than take the public package
        published.stop()
        (repo / "uv.lock").unlink()
        down = lock(repo, public)
        assert down.returncode != 0
        assert published.simple.rstrip("/") in down.stderr, down.stderr[-3000:]
        assert not (repo / "uv.lock").exists() or IMPOSTOR_VERSION not in (repo / "uv.lock").read_text()
    finally:
        public.stop()
        if published.process is None:
            published.start()
