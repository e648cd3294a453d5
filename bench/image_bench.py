"""Image benchmark (issue 26): the generated agent's and the service's container images, their sizes and build
times, measured by the image tests themselves (``make test-image``: offline builds on a private Docker engine)
so the figures are of exactly the images those tests prove.

Each run builds both images twice: cold (``IMAGE_NO_CACHE=1``: no layer cache but the local base image) and
then warm (the layer cache of the cold build, as a rebuild after a code-only change reuses its dependencies).
Needs root, as ``make test-image`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import Machine
from bench.processes import REPO
from bench.stats import fmt, fmt_runs, median

IMAGES = (("agent", "generated agent (`{{cookiecutter.agent_slug}}/Dockerfile`, vendored SDK)"),
          ("service", "platform service (`service/Dockerfile`)"))  # fmt: skip


@dataclass
class ImageResults:
    machine: Machine
    # kind (cold/warm) -> image -> measurements of each run
    runs: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)
    command: str = ""


def _measure(work: Path, name: str, cold: bool) -> dict[str, dict[str, float]]:
    out = work / f"{name}.json"
    env = {**os.environ, "IMAGE_BENCH_FILE": str(out), "IMAGE_NO_CACHE": "1" if cold else "0"}
    # Only what builds the images and proves they start: the size and time are of the tested images.
    args = ["make", "--no-print-directory", "test-image", "IMAGE_PYTEST_ARGS=-q -x"]
    with (work / f"{name}.log").open("w") as log:
        done = subprocess.run(  # noqa: S603 (fixed arguments)
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=3600, check=False
        )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"make test-image failed ({done.returncode}); see {work / f'{name}.log'}")
    measured: dict[str, dict[str, float]] = json.loads(out.read_text(encoding="utf-8"))
    missing = {n for n, _ in IMAGES} - set(measured)
    if missing:
        raise RuntimeError(f"make test-image measured no {', '.join(sorted(missing))} image")
    return measured


def run(runs: int, work: Path) -> ImageResults:
    results = ImageResults(Machine())
    for n in range(runs):
        for kind in ("cold", "warm"):
            measured = _measure(work, f"{kind}-{n}", cold=kind == "cold")
            for image, values in measured.items():
                results.runs.setdefault(kind, {}).setdefault(image, []).append(values)
        results.machine.probe()
    results.machine.finish()
    results.command = f"make bench BENCH=images BENCH_ARGS='--image-runs {runs}'"
    return results


def markdown(results: ImageResults) -> str:
    lines = [
        "## Images (issue 26)",
        "",
        f"Command: `{results.command}`. Each run is one `make test-image` with `IMAGE_NO_CACHE=1` (cold: no"
        " layer cache, the local Debian base image cached) and one without (warm: the cold build's layer"
        " cache). Builds are offline (`--network none`, wheels from a local wheelhouse), so the time is the"
        " build's own, not a download's. Size: `docker image inspect` `.Size` (uncompressed).",
        "",
        results.machine.markdown(),
        "",
        "| image | size MB | cold build s (median) | warm build s (median) | cold s per run"
        " | warm s per run |",
        "|---|---:|---:|---:|---|---|",
    ]
    for image, label in IMAGES:
        cold = results.runs.get("cold", {}).get(image, [])
        warm = results.runs.get("warm", {}).get(image, [])
        size = median([m["size_bytes"] / 1e6 for m in cold + warm])
        cold_s, warm_s = [m["build_seconds"] for m in cold], [m["build_seconds"] for m in warm]
        lines.append(
            f"| {label} | {fmt(size)} | {fmt(median(cold_s))} | {fmt(median(warm_s))} |"
            f" {fmt_runs(cold_s)} | {fmt_runs(warm_s)} |"
        )
    return "\n".join(lines)
