"""Resident memory of a process and its descendants, read from /proc (RSS per process, and PSS, which splits
pages shared between the forkserver and its job processes fairly instead of counting them twice)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (_PROC / str(pid) / "task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (reads /proc/<pid>/task/*/children, Linux ≥ 3.5)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def _kib(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class TreeMemory:
    processes: int
    main_rss_mib: float
    tree_rss_mib: float
    tree_pss_mib: float


def tree_memory(pid: int) -> TreeMemory:
    pids = descendants(pid)
    rss = {p: _kib(_PROC / str(p) / "status", "VmRSS") for p in pids}
    pss = sum(_kib(_PROC / str(p) / "smaps_rollup", "Pss") for p in pids)
    return TreeMemory(
        processes=len(pids),
        main_rss_mib=rss.get(pid, 0) / 1024,
        tree_rss_mib=sum(rss.values()) / 1024,
        tree_pss_mib=pss / 1024,
    )
