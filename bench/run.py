"""``make bench``: run the benchmarks (all, or the parts named in ``--only``/``BENCH``) and write
docs/benchmarks.md. Run from the repository root: ``uv run python -m bench.run --only service``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import report
from bench.processes import REPO


def _service(args: argparse.Namespace, work: Path) -> str:
    from bench import service_bench

    results = service_bench.run(args.duration, args.runs, work, args.speedups, args.baseline)
    return service_bench.markdown(results)


def _sdk(args: argparse.Namespace, work: Path) -> str:
    from bench import sdk_bench

    return sdk_bench.markdown(sdk_bench.run(args.sdk_runs, work))


def _template(args: argparse.Namespace, work: Path) -> str:
    from bench import template_bench

    return template_bench.markdown(template_bench.run(args.template_runs, work))


def _scale(args: argparse.Namespace, work: Path) -> str:
    from bench import scale_bench

    return scale_bench.markdown(scale_bench.run(args.duration, args.scale_runs, work))


def _images(args: argparse.Namespace, work: Path) -> str:
    from bench import image_bench

    return image_bench.markdown(image_bench.run(args.image_runs, work))


RUNNERS: dict[str, Callable[[argparse.Namespace, Path], str]] = {
    "service": _service,
    "sdk": _sdk,
    "template": _template,
    "scale": _scale,
    "images": _images,
}


def _parts(value: str) -> list[str]:
    names = [p.strip() for p in value.split(",") if p.strip()]
    if not names or names == ["all"]:
        return list(report.SECTIONS)
    unknown = sorted(set(names) - set(RUNNERS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"BENCH/--only: unknown part(s) {', '.join(unknown)}: use all or a comma-separated list of"
            f" {', '.join(RUNNERS)}"
        )
    return [n for n in report.SECTIONS if n in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", type=_parts, default=_parts(os.environ.get("BENCH", "all")))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk point (default 10)")
    parser.add_argument("--runs", type=int, default=5, help="runs per service point (default 5)")
    parser.add_argument(
        "--speedups",
        choices=("on", "off", "each"),
        default="off",
        help="the service beside its speedups: off (default: the plain path too), each (also without each"
        " speedup in turn), on (the speedups only)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of this repository (its .venv synced) whose service runs beside this one's in"
        " the same run, on a database of its own: an A/B on one machine state",
    )
    parser.add_argument("--sdk-runs", type=int, default=5, help="worker starts of each kind (default 5)")
    parser.add_argument(
        "--template-runs", type=int, default=3, help="bakes/test runs per answer set (default 3)"
    )
    parser.add_argument(
        "--scale-runs", type=int, default=3, help="runs of each replica set in the scale part (default 3)"
    )
    parser.add_argument(
        "--image-runs", type=int, default=1, help="cold and warm builds of both images (default 1)"
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, request files)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="lkps-bench-"))
    sections: dict[str, str] = {}
    failed: list[str] = []
    started = time.monotonic()
    for name in args.only:
        part_dir = work / name
        part_dir.mkdir()
        print(f"bench: {name} ...", flush=True)
        part_started = time.monotonic()
        try:
            sections[name] = RUNNERS[name](args, part_dir)
        except Exception:  # one broken part must not hide the others' results
            failed.append(name)
            print(f"bench: {name} failed; logs in {part_dir}", file=sys.stderr)
            traceback.print_exc()
            continue
        print(f"bench: {name} done in {time.monotonic() - part_started:.0f} s", flush=True)
    if sections:
        report.update(args.output, sections)
        print(
            f"bench: wrote {', '.join(sections)} to {args.output} ({time.monotonic() - started:.0f} s in all)"
        )
    if failed or args.keep:
        print(f"bench: work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
