"""Startup: how soon MAGI Studio's main window is usable, and how long `magi-studio --help` takes.

    python benchmarks/startup.py [--runs 5] [--platform offscreen|xcb] [--repo CHECKOUT]

Each run starts a fresh Python process the way the `magi-studio` entry point does (magi_studio.cli.main
with no arguments, a fresh settings and data folder, so a new untitled project) and reports, from the
moment the process was spawned:
  * shown: the main window's show() has returned,
  * idle: the event loop first ran out of work after that (a zero-delay timer fired): the window is
    painted and takes input; the model keeps loading on the engine thread behind it,
  * CPU: the process's CPU time (all threads) until then, which a loaded machine stretches far less
    than the wall time,
and the wall time of `magi-studio --help` (python -c "from magi_studio.cli import main; main()" --help).
Prints the best and the median of each, and the load average (the machine is shared: compare runs made
at a similar load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs in the child: the app's own entry point, with the window's show and the first idle timed.
CHILD = r"""
import os, sys, time
spawned = float(sys.argv[1])
import magi_studio.app as app_module

original = app_module._run_until_closed

async def measured(window, *args):
    from PySide6.QtCore import QTimer
    window.show()
    shown = time.time()

    def idle():
        print(f"{shown - spawned:.4f} {time.time() - spawned:.4f} {time.process_time():.4f}", flush=True)
        os._exit(0)  # the figures are out; nothing of the scratch project matters

    QTimer.singleShot(0, idle)
    return await original(window, *args)

app_module._run_until_closed = measured
from magi_studio.cli import main
sys.argv = ["magi-studio"]
main([])
"""


def run_app_once(env: dict, repo: Path) -> tuple[float, float, float]:
    spawned = time.time()
    child = subprocess.run([sys.executable, "-c", CHILD, repr(spawned)], env=env, cwd=repo, capture_output=True,
                           text=True, timeout=120)
    if child.returncode != 0 or not child.stdout.strip():
        raise SystemExit(f"the app did not start:\n{child.stdout}\n{child.stderr}")
    shown, idle, cpu = map(float, child.stdout.split()[-3:])
    return shown, idle, cpu


def run_help_once(env: dict, repo: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from magi_studio.cli import main; main()", "--help"], env=env, cwd=repo,
                   capture_output=True, check=True, timeout=60)
    return time.perf_counter() - started


def summary(values: list[float]) -> str:
    return f"best {min(values):.2f} s, median {statistics.median(values):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--platform", default="offscreen", help="QT_QPA_PLATFORM (xcb needs DISPLAY)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to start (another commit's, to compare)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "QT_QPA_PLATFORM": args.platform, "HOME": home, "XDG_CONFIG_HOME": f"{home}/config",
               "XDG_DATA_HOME": f"{home}/data", "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", f"{home}/cache"),
               "HF_HUB_OFFLINE": "1"}
        run_app_once(env, args.repo)  # warm the file cache and write the .pyc files; not counted
        load = os.getloadavg()[0]
        apps = [run_app_once(env, args.repo) for _ in range(args.runs)]
        helps = [run_help_once(env, args.repo) for _ in range(args.runs)]
        load = (load + os.getloadavg()[0]) / 2
    print(f"window shown:        {summary([a[0] for a in apps])}")
    print(f"first idle (usable): {summary([a[1] for a in apps])}")
    print(f"CPU until idle:      {summary([a[2] for a in apps])}")
    print(f"magi-studio --help:  {summary(helps)}")
    print(f"load average (1 min): {load:.1f} on {os.cpu_count()} cores; {args.runs} runs; QT_QPA_PLATFORM={args.platform}")


if __name__ == "__main__":
    main()
