"""``make demo``: the whole system on embedded defaults, driven the way agent teams and client apps use it.

Bakes a sample agent from this repository's template (``--no-input``), installs it against this checkout's
SDK, starts the platform service on SQLite with the Entra/Graph, LiveKit and OTLP stand-ins, runs the agent
as its own process through AKS workload identity, starts a session as a client app would, lets the agent's
token renew, prints a report and stops everything it started. Exit status 0 only when every step passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make the `demo` package importable
    sys.path.insert(0, str(REPO))

import jwt  # noqa: E402

from demo.processes import free_port, wait_for  # noqa: E402
from demo.report import DemoFacts, render  # noqa: E402
from demo.steps import Step, Steps  # noqa: E402
from demo.system import System, SystemOptions  # noqa: E402

AGENT_NAME = "Demo Agent"
NAMESPACE = "demo-agents"
# The template's identity and URL answers have no defaults: the demo gives its own (its agent reaches the
# platform through the stand-ins' URLs, set in its environment, not through these).
OWNERSHIP_AND_DEPLOYMENT = {
    "owner_contact": "demo-agents@contoso.com",
    "codeowners": "@contoso/demo-agents",
    "platform_url_nonprod": "https://livekit-platform.nonprod.contoso.com",
    "platform_url_prod": "https://livekit-platform.contoso.com",
    "container_registry": "contosodemo.azurecr.io",
}
# The agent's token lives 60 s (the service's minimum) and the SDK renews it at half-life.
TOKEN_TTL = 60
FINAL_STATUSES = ("completed", "agent_never_joined", "failed")


def uv_binary() -> str:
    # `uv run` exports its own path; a bare `uv` may be a pyenv shim that follows the baked .python-version
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise RuntimeError("uv is not installed: run `make sync` (it installs uv into .tools/)")
    return found


def python_answer() -> str | None:
    """This interpreter's version when the template offers it: the agent then runs on the Python already
    here, so installing it needs no interpreter download (only packages from the index)."""
    choices = json.loads((REPO / "cookiecutter.json").read_text())["python_version"]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    return running if running in choices else None


def bake(workdir: Path, *, tenant_id: str, agent_id: str, platform_id: str) -> Path:
    """``cookiecutter --no-input`` on this checkout with every required answer given, the SDK taken from this
    checkout; returns the repo."""
    config = workdir / "cookiecutter.yaml"
    config.write_text(f"cookiecutters_dir: {workdir / 'cc'}\nreplay_dir: {workdir / 'cc-replay'}\n")
    answers = {
        "agent_name": AGENT_NAME,
        "aks_namespace": NAMESPACE,
        "entra_tenant_id": tenant_id,
        "agent_entra_app_id": agent_id,
        "platform_app_id": platform_id,
        **OWNERSHIP_AND_DEPLOYMENT,
        "_sdk_path": str(REPO / "sdk"),
    }
    if python_answer():
        answers["python_version"] = str(python_answer())
    out = workdir / "baked"
    subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-m", "cookiecutter", str(REPO), "--no-input", "--output-dir", str(out),
         "--config-file", str(config), *(f"{k}={v}" for k, v in answers.items())],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (repo,) = [p for p in out.iterdir() if p.is_dir()]
    return repo


def install(repo: Path) -> Path:
    """``uv sync`` the generated repo (its own lock and .venv, the SDK from this checkout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    python = ["--python", sys.executable] if python_answer() else []
    done = subprocess.run(  # noqa: S603
        [uv_binary(), "sync", "--no-progress", *python],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    (repo.parent / "uv-sync.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"uv sync failed in {repo} (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return repo / ".venv" / "bin" / "python"


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (loopback probe)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def run(system: System, workdir: Path, steps: Steps, facts: DemoFacts) -> None:
    tenant_id, platform_id = system.options.tenant_id or "", system.options.platform_app_id or ""
    agent_id = str(uuid.uuid4())
    with steps.step("bake a sample agent from the template (cookiecutter --no-input)"):
        repo = bake(workdir, tenant_id=tenant_id, agent_id=agent_id, platform_id=platform_id)
        facts.agent_package = next(p.name for p in (repo / "src").iterdir() if p.is_dir())
    with steps.step(f"install it with uv sync ({repo.name}, SDK from this checkout)"):
        python = install(repo)
    with steps.step(
        "start Entra/Graph, LiveKit and OTLP stand-ins and the platform service (lkps dev, SQLite)"
    ):
        system.start()
    try:
        _session(system, steps, facts, python=python, repo=repo, agent_id=agent_id)
    finally:
        for agent in system.agents:
            facts.agent_exit_status = agent.stop(timeout=30)


def _session(
    system: System, steps: Steps, facts: DemoFacts, *, python: Path, repo: Path, agent_id: str
) -> None:
    facts.agent = system.tenant.add_workload_agent(
        system.workdir / f"{repo.name}-sa-token",
        app_id=agent_id,
        display_name=AGENT_NAME,
        namespace=NAMESPACE,
        service_account=repo.name,
    )
    facts.client = system.tenant.add_client("demo client app", authorized_for=[agent_id])
    readiness = free_port()
    env = {
        **system.agent_env(facts.agent, service_name=repo.name, readiness_port=readiness),
        "AGENT_HEALTH_PORT": str(free_port()),
        "AGENT_DRAIN_TIMEOUT_SECONDS": "10",
        "AGENT_IDLE_PROCESSES": "1",
        "AGENT_LOAD_THRESHOLD": "inf",  # a busy machine must not make the worker refuse the job
        "HF_HUB_OFFLINE": "1",
        # The model providers are never reached (the LiveKit stand-in has no media); their clients only need
        # a key to be constructed. Not a secret.
        "OPENAI_API_KEY": "demo-placeholder-never-sent",
    }
    with steps.step("run the agent: projected token -> Entra -> platform register -> LiveKit worker"):
        system.start_agent("agent", [str(python), "-m", facts.agent_package, "start"], env, cwd=repo)
        worker = system.livekit.wait_for_worker(agent_id, timeout=120)
        wait_for(
            lambda: http_status(f"http://127.0.0.1:{readiness}/ready") == 200,
            timeout=30,
            what="readiness 200",
        )
        print(f"      worker {worker.id} registered as agent_name {agent_id}", flush=True)

    with steps.step("client app: Entra token (client credentials) -> POST /api/session/start"):
        response = system.start_session(
            facts.client, agent_id, metadata={"language": "en", "department": "demo", "ticket": "DEMO-1"}
        )
        if response.status_code != 200:
            raise RuntimeError(f"session/start answered {response.status_code}: {response.text}")
        started = response.json()
        facts.room = started["room_name"]
        claims = jwt.decode(started["participant_token"], options={"verify_signature": False})
        facts.participant_token_expires_at = float(claims["exp"])

    with steps.step("client joins LiveKit with the participant token -> the agent is dispatched and runs"):
        joined = system.livekit.join(started["participant_token"])
        if not joined.job_ids:
            raise RuntimeError(
                "the room config dispatched no job: the participant token has no agent dispatch"
            )
        facts.job_id = joined.job_ids[0]
        job = system.livekit.wait_for_job_status(facts.job_id, "JS_RUNNING", timeout=60)
        print(f"      job {job.id} running on worker {job.worker_id}", flush=True)
        # The stand-in has no media server: the sample's voice pipeline cannot connect, so the job may end.
        try:
            system.livekit.wait_until(lambda: system.livekit.job(facts.job_id).ended, timeout=15, what="")
        except TimeoutError:
            facts.notes.append(
                "the job was still running when the client left; LiveKit ended it with the room"
            )
        else:
            facts.notes.append(
                "the job reached JS_RUNNING (the agent joined, in the LiveKit stand-in's terms) with its"
                " metadata; its voice pipeline then could not connect media (the stand-in has no media"
                " server: /rtc answers 404), so the job process ended. Media is out of the stand-in's scope."
            )

    with steps.step(f"client leaves; the agent's token renews (at half its {TOKEN_TTL} s lifetime)"):
        system.livekit.leave(facts.room, joined.identity)
        wait_for(lambda: _registrations(system, agent_id) >= 2, timeout=90, what="a token renewal")
        wait_for(lambda: _status(system, facts.room) in FINAL_STATUSES, timeout=90, what="the session ending")
        system.otlp.wait_for_spans(lambda spans: any(s.name == "platform.renew" for s in spans), timeout=30)

    with steps.step("stop the agent (SIGTERM drains, exits 0)"):
        code = system.agents[0].stop(timeout=60)
        if code != 0:
            raise RuntimeError(f"the agent exited with status {code}; see {system.agents[0].log_path}")


def _registrations(system: System, agent_id: str) -> int:
    rows = system.rows("SELECT count(*) AS n FROM agent_registrations WHERE entra_app_id = :a", a=agent_id)
    return int(rows[0]["n"])


def _status(system: System, room: str) -> str:
    rows = system.rows("SELECT status FROM sessions WHERE room_name = :room", room=room)
    return str(rows[0]["status"]) if rows else ""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally`, which stops what was started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, baked repo)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="livekit-platform-demo-"))
    steps, facts = Steps(), DemoFacts()
    system = System(
        SystemOptions(
            workdir=workdir / "system",
            identity_mode="entra",
            service_command="dev",  # SQLite, migrations on start: the embedded default
            agent_token_ttl=TOKEN_TTL,
            tenant_id=str(uuid.uuid4()),
            platform_app_id=str(uuid.uuid4()),
        )
    )
    started = time.monotonic()
    print(f"make demo: the whole system on loopback (working directory {workdir})", flush=True)
    interrupted = False
    try:
        run(system, workdir, steps, facts)
    except KeyboardInterrupt:
        interrupted = True
    except Exception as exc:
        if not steps.failed:  # an error between steps: report it like a failed step
            steps.done.append(Step("(between steps)", error=f"{type(exc).__name__}: {exc}"))
    finally:
        print(render(system if system.started else None, facts, steps.done))
        system.close()
    failed = steps.failed or interrupted
    print(f"\n{'FAILED' if failed else 'OK'}: {time.monotonic() - started:.0f} s in total", flush=True)
    if failed or args.keep:
        print(f"logs and the baked agent are in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
