"""The platform service's image (service/Dockerfile): built offline, migrates and serves on PostgreSQL as a
non-root exec-form process, reports healthy, and flushes its audit queue on `docker stop`."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
import tomllib
from livekit import api

from livekit_platform_testing.livekit import LiveKitStandIn
from tests.support.image import BENCH, MEASURED, Engine
from tests.support.netns import network_namespace
from tests.support.paths import REPO
from tests.support.postgres import PostgresCluster
from tests.support.tools import uv_binary
from tests.support.wheelhouse import Target, locked_pins, wheelhouse

pytestmark = pytest.mark.timeout(1800)

PACKAGE = "livekit-platform-service"
TAG = "lkp-image-test/lkps:latest"
PORT = 8080  # the image's default `serve --port`
# What `.dockerignore` lets into the build context (the repository root).
CONTEXT_FILES = (
    ".dockerignore",
    "pyproject.toml",
    "uv.lock",
    "sdk/pyproject.toml",
    "sdk/README.md",
    "testing/pyproject.toml",
    "testing/README.md",
    "service/pyproject.toml",
    "service/README.md",
    "service/Dockerfile",
    "service/wheels/README.md",
)
STOP_GRACE = 30


@dataclass(frozen=True)
class ServiceImage:
    tag: str
    build_seconds: float


def _build_requirements() -> list[str]:
    dockerfile = (REPO / "service" / "Dockerfile").read_text(encoding="utf-8")
    pinned = re.search(r"^ARG UV_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert pinned, "service/Dockerfile has no `ARG UV_VERSION=...` line"
    backend = tomllib.loads((REPO / "service" / "pyproject.toml").read_text(encoding="utf-8"))
    return sorted({f"uv=={pinned.group(1)}", *backend["build-system"]["requires"]})


@pytest.fixture(scope="session")
def service_image(engine: Engine, target: Target, tmp_path_factory: pytest.TempPathFactory) -> ServiceImage:
    """`docker build -f service/Dockerfile` with no network, from a context of what .dockerignore admits."""
    context = tmp_path_factory.mktemp("service-context")
    for name in CONTEXT_FILES:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, context / name)
    shutil.copytree(
        REPO / "service" / "src", context / "service" / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    uv = uv_binary()
    pins = locked_pins(uv, REPO, target, package=PACKAGE)
    tools = _build_requirements()
    # Its own folder: the agent's wheelhouse keeps one set only, and would drop this one.
    house, _ = wheelhouse(uv, target, pins, tools, engine.cache / "wheelhouse-service", engine.cache / "pip")
    for wheel in house.glob("*.whl"):
        shutil.copyfile(wheel, context / "service" / "wheels" / wheel.name)
    # IMAGE_NO_CACHE=1: a cold build (the base image stays cached)
    cold = ["--no-cache"] if os.environ.get("IMAGE_NO_CACHE") == "1" else []
    args = ["build", "--network", "none", "--build-arg", "OFFLINE_WHEELS=1"]
    args += ["--build-arg", f"PYTHON_IMAGE={engine.base_image}"]
    args += ["-f", str(context / "service" / "Dockerfile")]
    started = time.monotonic()
    # The build stage gets its own tag first (as the agent's does): untagged, the prune below would drop it
    # and the next build would find no layer cache.
    stage = engine.docker.run(
        *args, *cold, "--target", "build", "-t", f"{TAG}-build", str(context), timeout=1500
    )
    final = engine.docker.run(*args, "-t", TAG, str(context), timeout=1500)
    seconds = time.monotonic() - started
    engine.docker.run("image", "prune", "--force")
    size = int(engine.docker.output("image", "inspect", "--format", "{{.Size}}", TAG))
    steps = stage.stdout.count("\nStep ") + final.stdout.count("\nStep ")
    cached = stage.stdout.count("Using cache") + final.stdout.count("Using cache")
    BENCH["service image"] = (
        f"{TAG}: {size / 1e6:.0f} MB, built in {seconds:.0f} s ({cached}/{steps} steps cached)"
    )
    MEASURED["service"] = {"size_bytes": size, "build_seconds": seconds, "steps": steps, "cached": cached}
    return ServiceImage(TAG, seconds)


@dataclass
class ServiceStack:
    livekit: LiveKitStandIn
    cluster: PostgresCluster
    database: str

    def count(self, sql: str) -> int:
        return int(self.cluster.psql(sql, database=self.database) or 0)


@pytest.fixture
def service_stack(engine: Engine) -> Iterator[ServiceStack]:
    """A real PostgreSQL and the LiveKit stand-in, both inside the engine's network namespace."""
    cluster = PostgresCluster()
    cluster.init()
    with ExitStack() as cleanup:
        cleanup.callback(cluster.destroy)
        with network_namespace(engine.netns):
            cluster.start()
            cluster.create_database("lkps")
            livekit = cleanup.enter_context(LiveKitStandIn())
        yield ServiceStack(livekit, cluster, "lkps")


# `lkps serve` refuses gateway mode without it
GATEWAY_SECRET = "image-test-gateway-secret-" + "g" * 32
# The platform's agent-token key (agent tokens are good at the relay, never directly at LiveKit)
AGENT_KEY_ID = "lkps-agent"
AGENT_TOKEN_SECRET = "lkps-image-test-agent-key-" + "a" * 40


def _env(stack: ServiceStack) -> list[str]:
    env = {
        "LIVEKIT_URL": stack.livekit.ws_url,
        "LIVEKIT_API_KEY": stack.livekit.api_key,
        "LIVEKIT_API_SECRET": stack.livekit.api_secret,
        "LKPS_AGENT_TOKEN_SECRET": AGENT_TOKEN_SECRET,
        "LKPS_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{stack.cluster.port}/{stack.database}",
        "LKPS_IDENTITY_MODE": "gateway",
        "LKPS_GATEWAY_SHARED_SECRET": GATEWAY_SECRET,
    }
    return [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]


def _request(
    method: str, path: str, body: dict[str, object] | None, headers: dict[str, str]
) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


def test_service_image_is_non_root_exec_form_with_a_healthcheck(
    engine: Engine, service_image: ServiceImage
) -> None:
    config = json.loads(
        engine.docker.output("image", "inspect", "--format", "{{json .Config}}", service_image.tag)
    )

    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python", "-m", "lkps"]
    assert config["Cmd"] == ["serve", "--host", "0.0.0.0", "--port", str(PORT)]  # noqa: S104
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "/api/health" in " ".join(config["Healthcheck"]["Test"])


def test_service_container_migrates_serves_reports_healthy_and_flushes_audit_on_stop(
    engine: Engine, service_image: ServiceImage, service_stack: ServiceStack
) -> None:
    docker = engine.docker
    hardening = [
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ]
    migrate = docker.run(
        "run", "--rm", *hardening, *_env(service_stack), service_image.tag, "migrate", check=False
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    name = f"lkp-image-test-lkps-{os.getpid()}"
    # the image's HEALTHCHECK command, probed every second instead of every 30 s
    docker.run("run", "--detach", "--name", name, *hardening, "--health-interval", "1s",
               *_env(service_stack), service_image.tag)  # fmt: skip
    try:
        agent_id = str(uuid.uuid4())
        with network_namespace(engine.netns):
            deadline = time.monotonic() + 60
            while (health := _request("GET", "/api/health", None, {}))[0] != 200:
                assert time.monotonic() < deadline, (
                    f"no healthy answer: {health}; log:\n{_logs(engine, name)}"
                )
                time.sleep(0.3)
            status, body = _request(
                "POST",
                "/api/agent/register",
                {"service_config": {"enforce_client_authz": False}},
                {
                    "client-id": agent_id,
                    "user-id": str(uuid.uuid4()),
                    "x-gateway-secret": GATEWAY_SECRET,
                    "content-type": "application/json",
                },
            )
        assert health[1]["status"] == "healthy"
        assert status == 200, body
        claims = api.TokenVerifier(AGENT_KEY_ID, AGENT_TOKEN_SECRET).verify(body["livekit_token"])
        assert claims.identity.startswith(f"agent-{agent_id}-")
        assert claims.video is not None
        assert claims.video.agent

        deadline = time.monotonic() + 60
        while (state := docker.output("inspect", "--format", "{{.State.Health.Status}}", name)) != "healthy":
            assert state in ("starting", "healthy"), f"health {state}; log:\n{_logs(engine, name)}"
            assert time.monotonic() < deadline, f"still {state}; log:\n{_logs(engine, name)}"
            time.sleep(0.5)
        # PID 1 is the service itself (exec form), and nothing in the container runs as root
        assert docker.output("exec", name, "cat", "/proc/1/cmdline").split("\0")[:3] == [
            "python",
            "-m",
            "lkps",
        ]
        uids = {
            line.split()[1]
            for line in docker.output(
                "exec", name, "sh", "-c", "grep -h ^Uid: /proc/[0-9]*/status"
            ).splitlines()
        }
        assert uids == {"10001"}

        started = time.monotonic()
        docker.run("stop", "--time", str(STOP_GRACE), name, timeout=STOP_GRACE + 60)
        elapsed = time.monotonic() - started
        exit_code = int(docker.output("inspect", "--format", "{{.State.ExitCode}}", name))
        assert exit_code == 0, f"exit {exit_code}; log:\n{_logs(engine, name)}"
        assert elapsed < STOP_GRACE
        with network_namespace(engine.netns):
            rows = service_stack.count(
                f"SELECT count(*) FROM agent_registrations WHERE entra_app_id = '{agent_id}'"  # noqa: S608
            )
        assert rows == 1
        log = _logs(engine, name)
        assert body["livekit_token"] not in log
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        stopped = [r for r in records if r["msg"] == "lkps stopped"]
        assert stopped, log  # written on the way out, with the audit counts
        assert stopped[0]["audit_written"] >= 1
        assert records[-1]["msg"].startswith("Finished server process")
    finally:
        docker.run("rm", "--force", name, check=False)


def _logs(engine: Engine, name: str) -> str:
    result = engine.docker.run("logs", name, check=False)
    return (result.stdout + result.stderr)[-6000:]
