"""The Chromium processes this Python process started, read from /proc (Linux).

Benchmarks sum their memory; tests find the browser process to kill it. Walking the
parent chain keeps other programs' Chromiums (another test run, a desktop browser) out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ChromiumProcess:
    pid: int
    command: str

    @property
    def is_browser(self) -> bool:
        """The browser (main) process: Playwright's pipe flag, and no ``--type=`` of a child process."""
        return "--remote-debugging-pipe" in self.command and "--type=" not in self.command

    def memory_mib(self) -> dict[str, float]:
        """RSS and PSS in MiB (zero if the process has ended). PSS shares common pages fairly."""
        try:
            lines = (_PROC / str(self.pid) / "smaps_rollup").read_text().splitlines()
            fields = dict(line.split(":", 1) for line in lines if ":" in line)
            return {"rss": int(fields["Rss"].split()[0]) / 1024, "pss": int(fields["Pss"].split()[0]) / 1024}
        except (OSError, KeyError, ValueError):
            return {"rss": 0.0, "pss": 0.0}

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and of its reaped children (renderers that ended)."""
        try:
            fields = (_PROC / str(self.pid) / "stat").read_text().rsplit(")", 1)[1].split()
            return sum(int(f) for f in fields[11:15]) / _TICKS
        except (OSError, ValueError, IndexError):
            return 0.0


def own_chromium_processes(root: int | None = None) -> list[ChromiumProcess]:
    """Chromium processes descending from ``root`` (default: this process)."""
    root = os.getpid() if root is None else root
    parents: dict[int, int] = {}
    chromium: dict[int, str] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pid = int(entry.name)
            parents[pid] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if "chrom" in (entry / "comm").read_text():
                chromium[pid] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 1)
            if pid == root:
                return True
        return False

    return [ChromiumProcess(pid, command) for pid, command in chromium.items() if descends(pid)]


def chromium_memory_mib(root: int | None = None) -> dict[str, float]:
    """Summed RSS and PSS of the Chromium processes descending from ``root``, in MiB."""
    totals = {"rss": 0.0, "pss": 0.0}
    for process in own_chromium_processes(root):
        for key, value in process.memory_mib().items():
            totals[key] += value
    return {key: round(value, 1) for key, value in totals.items()}


def chromium_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds the Chromium processes descending from ``root`` have used so far."""
    return sum(process.cpu_seconds() for process in own_chromium_processes(root))
