"""Template benchmark (issue 7): bake time per answer set (cookiecutter's Python API, ``--no-input`` plus
extra context), and the generated repo's own test time (``uv sync``, then its pytest).

The generated repo takes the SDK from this checkout through the private ``_sdk_path`` answer, as the
template tests do. A failing bake or test is reported in the table, not raised: the template changes often.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import Machine
from bench.processes import REPO
from bench.stats import fmt, fmt_runs, median

SDK_DIR = REPO / "sdk"
# The identity and URL answers have no default (the template refuses its documented examples): every bake
# gives them, as a team must.
REQUIRED_ANSWERS: dict[str, object] = {
    "owner_contact": "voice-agents@contoso.com",
    "codeowners": "@contoso/voice-agents",
    "entra_tenant_id": "5d3c2b1a-0f9e-4d8c-b7a6-958473625140",
    "agent_entra_app_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "platform_app_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
    "platform_url_nonprod": "https://voice-platform.nonprod.contoso.com",
    "platform_url_prod": "https://voice-platform.contoso.com",
    "container_registry": "contosoagents.azurecr.io",
}
ANSWER_SETS: dict[str, dict[str, object]] = {
    "defaults (SDK from this checkout, OpenAI + Silero, OTLP, GitHub, 3.12)": {},
    "vendored SDK, OpenAI Realtime, Azure Monitor, Azure Pipelines, 3.13, no client authz": {
        "sdk_source": "vendored",
        "plugins": "openai-realtime",
        "telemetry_exporter": "azure_monitor",
        "ci_system": "azure_pipelines",
        "python_version": "3.13",
        "enforce_client_authz": False,
    },
    "Deepgram + OpenAI + Cartesia, no telemetry, no CI, 3.11": {
        "plugins": "openai+deepgram+cartesia",
        "telemetry_exporter": "none",
        "ci_system": "none",
        "python_version": "3.11",
    },
}
TESTED_SET = "defaults (SDK from this checkout, OpenAI + Silero, OTLP, GitHub, 3.12)"
SYNC_TIMEOUT = 600
PYTEST_TIMEOUT = 600
# The generated repo starts clean: no workspace venv, no machine LiveKit/Azure/OTEL settings, no pyenv pin.
_DROP = ("LIVEKIT_", "AZURE_", "OTEL_", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYENV_VERSION", "PYENV_DIR")


def uv_binary() -> str:
    """``uv run`` exports the real uv as UV; a bare ``uv`` on PATH may be a pyenv shim for one Python."""
    for candidate in (os.environ.get("UV"), str(REPO / ".tools" / "venv" / "bin" / "uv"), shutil.which("uv")):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("uv not found: run `make sync` (or set UV to the uv binary)")


def generated_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP)}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Send this process's stdout/stderr (and so the hooks' output) to ``log`` at the descriptor level."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


class Baker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.config = root / "cookiecutter-config.yaml"
        self.config.write_text(
            f"cookiecutters_dir: {root / 'cookiecutters'}\nreplay_dir: {root / 'replay'}\n", encoding="utf-8"
        )

    def bake(self, answers: dict[str, object]) -> tuple[Path, float]:
        from cookiecutter.main import cookiecutter  # type: ignore[import-untyped]

        self.count += 1
        output = self.root / f"bake-{self.count}"
        started = time.perf_counter()
        with _output_to(self.root / "bake.log"):
            project = cookiecutter(
                str(REPO),
                no_input=True,
                extra_context={"_sdk_path": str(SDK_DIR), **REQUIRED_ANSWERS, **answers},
                output_dir=str(output),
                config_file=str(self.config),
            )
        return Path(project), time.perf_counter() - started


@dataclass
class TestRun:
    sync_s: float = float("nan")
    pytest_s: float = float("nan")
    outcome: str = ""

    @property
    def total_s(self) -> float:
        return self.sync_s + self.pytest_s


@dataclass
class TemplateResults:
    machine: Machine
    runs: int
    bakes: dict[str, list[float]] = field(default_factory=dict)
    bake_errors: dict[str, str] = field(default_factory=dict)
    tests: list[TestRun] = field(default_factory=list)
    uv: str = ""


def _timed(
    args: list[str], cwd: Path, timeout: float, log: Path
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (uv with fixed arguments)
        args, cwd=cwd, env=generated_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    elapsed = time.perf_counter() - started
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(args)}  (in {cwd}, {elapsed:.1f} s, exit {done.returncode})\n")
        out.write(done.stdout + done.stderr + "\n")
    return elapsed, done


def _test_generated(baker: Baker, uv: str, log: Path) -> TestRun:
    run = TestRun()
    try:
        repo, _ = baker.bake(ANSWER_SETS[TESTED_SET])
        run.sync_s, sync = _timed([uv, "sync"], repo, SYNC_TIMEOUT, log)
        if sync.returncode != 0:
            run.outcome = f"uv sync failed ({sync.returncode})"
            return run
        run.pytest_s, tests = _timed(
            [uv, "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"], repo, PYTEST_TIMEOUT, log
        )
        summary = (tests.stdout.strip().splitlines() or ["no output"])[-1].strip("= ")
        run.outcome = summary if tests.returncode == 0 else f"pytest failed ({tests.returncode}): {summary}"
    except Exception as exc:  # reported in the table: the template is still changing
        run.outcome = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return run


def run(runs: int, work: Path) -> TemplateResults:
    machine = Machine()
    uv = uv_binary()
    machine.add_tool("uv", [uv, "--version"])
    machine.add_tool("cookiecutter", [sys.executable, "-m", "cookiecutter", "--version"])
    machine.tools["cookiecutter"] = " ".join(machine.tools["cookiecutter"].split()[:2])
    results = TemplateResults(machine, runs, uv=uv)
    baker = Baker(work)
    for name, answers in ANSWER_SETS.items():
        try:
            baker.bake(answers)  # warm-up: Jinja environment, hook interpreters, page cache
            results.bakes[name] = [baker.bake(answers)[1] for _ in range(runs)]
        # reported in the table: the template is still changing (its answer check ends a bad bake by exiting)
        except (Exception, SystemExit) as exc:
            results.bake_errors[name] = (
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
    results.tests = [_test_generated(baker, uv, work / "generated-tests.log") for _ in range(runs)]
    machine.finish()
    return results


def _seconds_row(label: str, values: list[float]) -> str:
    return f"| {label} | {fmt(median(values), 1)} | {fmt_runs(values, 1)} |"


def markdown(results: TemplateResults) -> str:
    lines = [
        "## Template (issue 7)",
        "",
        results.machine.markdown(),
        f"- Setup: cookiecutter's Python API (`no_input=True`, `extra_context` = the answer set plus"
        f" `_sdk_path` = this checkout's `sdk/`); one warm-up bake per answer set, then {results.runs}."
        " Generated repo: a fresh bake of the defaults each run, `uv sync` (uv's cache warm after the first"
        " run), then `uv run --no-sync pytest -q` in it.",
        "",
        "| answer set | bake s (median) | bake s per run |",
        "|---|---:|---|",
    ]
    for name in ANSWER_SETS:
        if name in results.bake_errors:
            lines.append(f"| {name} | failed | {results.bake_errors[name]} |")
        else:
            times = results.bakes.get(name, [])
            lines.append(f"| {name} | {fmt(median(times), 2)} | {fmt_runs(times, 2)} |")
    tests = results.tests
    lines += [
        "",
        f"Generated repo's tests ({TESTED_SET}):",
        "",
        "| | median s | per run s |",
        "|---|---:|---|",
        _seconds_row("`uv sync`", [t.sync_s for t in tests]),
        _seconds_row("pytest", [t.pytest_s for t in tests]),
        _seconds_row("both", [t.total_s for t in tests]),
        "",
        "Outcomes: " + "; ".join(f"run {i}: {t.outcome}" for i, t in enumerate(tests, start=1)),
        "",
        "Commands:",
        "",
        "```",
        "make bench BENCH=template",
        "# each bake (Python API):",
        "#   cookiecutter('.', no_input=True, extra_context={'_sdk_path': 'sdk', **answers})",
        "# in the baked defaults repo:",
        "uv sync",
        "uv run --no-sync pytest -q -p no:cacheprovider",
        "```",
    ]
    return "\n".join(lines)
