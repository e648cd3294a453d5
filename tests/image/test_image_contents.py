"""What the generated agent's image holds: built offline, lean, non-root, its model files baked in."""

from __future__ import annotations

import json

import pytest

from tests.support.image import AgentImage, Engine

# the first test builds the image (minutes on a cold machine)
pytestmark = pytest.mark.timeout(1800)

TOOLCHAIN = ("gcc", "cc", "c++", "g++", "make", "uv", "uvx")
ID_COMMAND = ("sh", "-c", "id -u; id -g")
# what only the build stage should hold
LEFTOVERS = ("/wheels", "/root/.cache", "/app/src", "/app/uv.lock")


def test_engine_gives_host_network_containers_nothing_but_loopback(engine: Engine) -> None:
    # the premise of "no network at run time": --network host joins the engine's namespace
    names = engine.docker.output(
        "run", "--rm", "--network", "host", engine.base_image,
        "python", "-c", "import socket; print(' '.join(name for _, name in socket.if_nameindex()))",
    )  # fmt: skip

    assert names.split() == ["lo"]


def test_image_runs_as_the_non_root_agent_user_by_default(engine: Engine, agent_image: AgentImage) -> None:
    config = json.loads(
        engine.docker.output("image", "inspect", "--format", "{{json .Config}}", agent_image.tag)
    )
    ids = engine.docker.output("run", "--rm", "--network", "none", agent_image.tag, *ID_COMMAND)

    assert config["User"] == "10001:10001"
    assert ids.split() == ["10001", "10001"]


def test_image_holds_no_build_toolchain_and_no_wheels(engine: Engine, agent_image: AgentImage) -> None:
    # prints the path of anything found, then "end" (the last command's status is the script's)
    script = f"for t in {' '.join(TOOLCHAIN)}; do command -v $t; done; ls -d {' '.join(LEFTOVERS)}; echo end"
    found = engine.docker.output("run", "--rm", "--network", "none", agent_image.tag, "sh", "-c", script)
    uv_module = engine.docker.output(
        "run", "--rm", "--network", "none", agent_image.tag,
        "python", "-c", "import importlib.util; print(importlib.util.find_spec('uv'))",
    )  # fmt: skip

    assert found == "end"
    assert uv_module == "None"


def test_image_finds_its_model_files_with_no_network(engine: Engine, agent_image: AgentImage) -> None:
    # download-files succeeds offline only when every file it would fetch is already in HF_HOME; the VAD
    # load is what the job process's prewarm does before a call arrives
    package = agent_image.repo.package
    script = (
        "set -e; python -m $PACKAGE download-files; "
        "python -c 'from livekit.plugins import silero; silero.VAD.load(); print(\"vad loaded\")'"
    )
    result = engine.docker.run(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--env", f"PACKAGE={package}",
        agent_image.tag, "sh", "-c", script,
        check=False,
    )  # fmt: skip
    env = json.loads(
        engine.docker.output("image", "inspect", "--format", "{{json .Config.Env}}", agent_image.tag)
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "vad loaded" in result.stdout
    assert "HF_HUB_OFFLINE=1" in env
    assert "HF_HOME=/opt/models/huggingface" in env
