"""The GUI soak, long: the real main window driven through random legal actions for a set time.

    python benchmarks/gui_soak.py --minutes 45 --json benchmarks/results/gui_soak.json   # tiny model, offscreen
    python benchmarks/gui_soak.py --minutes 5 --model studio-mini                          # the real small model
    python benchmarks/gui_soak.py --minutes 5 --xvfb :17        # a real X server (started and stopped here)
    python benchmarks/gui_soak.py --minutes 5 --display :17     # an X server already running there

The driver is tests/magi_studio/soak.py (the test suite runs a short seeded run of it): each step one
action a director could take — edits, drops, typing, Generate / Stop / Regenerate From, takes,
undo/redo, save, reopen, export — then the document's invariants and the views are checked.

The soak runs in child processes, so that a crash (an abort, a segfault) is counted and the soak goes
on in a fresh process with the next seed until the time is used; a step that takes over HANG_S is a
hang (every thread's stack is dumped, the process ends, and it counts as a crash too). Prints and writes
JSON: actions driven, hours, crashes (processes that died or hung) and crashes per hour, Python exceptions raised in the app
(slots, event handlers), invariant violations, errors the app reported to the user by kind, and for
each problem the step, the action and the actions before it. The load average is recorded: the
machine is shared.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: A step (action and checks) that takes longer than this is a hang (the longest legal wait is an export's 20 s).
HANG_S = 120
sys.path.insert(0, str(ROOT))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to soak in all")
    parser.add_argument("--actions", type=int, default=None, help="stop after this many actions (all processes)")
    parser.add_argument("--model", default="tiny", help="'tiny' (random test model, 64x64) or a GenerationSession.load "
                        "spec")
    parser.add_argument("--seed", type=int, default=1, help="the first process's seed; each restart takes the next")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--xvfb", metavar="DISPLAY", help="start Xvfb on this display (1920x1080) for the run")
    parser.add_argument("--display", metavar="DISPLAY", help="run on this running X server instead of offscreen")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # one soak process: its progress file
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# One soak process ---------------------------------------------------------------------------------
def child(args) -> None:
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    import torch

    torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication(["gui_soak"])
    from magi_engine.session import GenerationSession
    from magi_studio import theme
    from magi_studio.dialogs.project_prompts import DISCARD
    from magi_studio.engine_worker import EngineState, EngineWorker
    from magi_studio.settings import Settings
    from magi_studio.studio import Studio
    from tests.magi_studio.prompts import FakePrompts
    from tests.magi_studio.soak import Soak

    theme.apply_theme(app)
    folder = Path(tempfile.mkdtemp(prefix="gui-soak-"))
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder / "settings"))
    QCoreApplication.setOrganizationName("MAGI Studio Soak")
    os.environ["XDG_DATA_HOME"], os.environ["XDG_CACHE_HOME"] = str(folder / "data"), str(folder / "cache")
    settings = Settings()
    settings.device, settings.welcome_dismissed, settings.last_folder = "cpu", True, str(folder)
    worker = EngineWorker()
    if args.model == "tiny":
        from tests.engine.factories import tiny_bundle

        settings.model, settings.width, settings.height = "tiny", 64, 64
        load = worker.use_session(GenerationSession(tiny_bundle()))
    else:
        settings.model = args.model
        load = worker.load_model(args.model, "cpu")
    studio = Studio(settings, worker=worker, prompts=FakePrompts(), scratch_root=folder / "untitled")
    soak = Soak(studio, seed=args.seed, folder=folder / "work")  # its prompts answer from here on
    studio.start()
    studio.window.resize(1600, 900)
    studio.window.show()
    studio.window.activateWindow()
    soak.wait_until(lambda: load not in worker.live_jobs and worker.state == EngineState.READY, 600)
    progress, last = args.child, [0.0]

    def write(report, done=False) -> None:
        state = {**report.as_dict(), "done": done, "recent": list(soak.recent)}
        progress.with_suffix(".tmp").write_text(json.dumps(state))
        progress.with_suffix(".tmp").replace(progress)

    def on_step(report) -> None:
        # A step that never ends (a deadlock) dumps every thread's stack to stderr and ends the process,
        # which the parent counts as a hang; faulthandler's watchdog needs no GIL.
        faulthandler.dump_traceback_later(HANG_S, exit=True)
        if time.perf_counter() - last[0] > 5 or report.actions % 100 == 0:
            last[0] = time.perf_counter()
            write(report)

    faulthandler.enable()
    report = soak.run(seconds=args.seconds, actions=args.actions, on_step=on_step)
    faulthandler.cancel_dump_traceback_later()
    write(report)
    soak.prompts.unsaved_changes = lambda name, untitled=False: DISCARD  # the soak's project is not kept
    studio.dispose()
    worker.shutdown()
    write(report, done=True)


# The soak: child processes until the time is used --------------------------------------------------
def start_xvfb(display: str) -> subprocess.Popen:
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = Path(f"/tmp/.X11-unix/X{display.lstrip(':')}")
    deadline = time.time() + 10
    while not socket.exists() and time.time() < deadline:
        time.sleep(0.1)
    if not socket.exists():
        server.kill()
        raise SystemExit(f"Xvfb did not start on {display}")
    return server


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child is not None:
        child(args)
        return {}
    env = dict(os.environ)
    server = start_xvfb(args.xvfb) if args.xvfb else None
    display = args.xvfb or args.display
    if display:
        env["DISPLAY"], env["QT_QPA_PLATFORM"] = display, "xcb"
    else:
        env["QT_QPA_PLATFORM"] = "offscreen"
    started, seed = time.perf_counter(), args.seed
    total = {"actions": 0, "exceptions": 0, "invariant_violations": 0, "chunks_committed": 0}
    counts, reported, runs, problems, crashes, processes = {}, {}, {}, [], [], []
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="gui-soak-progress-") as scratch:
            while True:
                left = args.minutes * 60 - (time.perf_counter() - started)
                actions_left = None if args.actions is None else args.actions - total["actions"]
                if left < 5 or (actions_left is not None and actions_left <= 0):
                    break
                progress = Path(scratch) / f"soak-{seed}.json"
                command = [sys.executable, str(Path(__file__).resolve()), "--child", str(progress), "--seed", str(seed),
                           "--seconds", str(left), "--model", args.model, "--threads", str(args.threads)]
                if actions_left is not None:
                    command += ["--actions", str(actions_left)]
                run = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
                state = json.loads(progress.read_text()) if progress.exists() else {"actions": 0}
                processes.append({"seed": seed, "returncode": run.returncode, "actions": state.get("actions", 0),
                                  "seconds": state.get("seconds", 0)})
                if run.returncode != 0 or not state.get("done"):
                    crashes.append({"seed": seed, "returncode": run.returncode, "after_actions": state.get("actions"),
                                    "hang": "Timeout (" in run.stderr, "recent_actions": state.get("recent"),
                                    "stderr_tail": run.stderr[-6000:]})
                for key in total:
                    total[key] += state.get(key, 0)
                for table, key in ((counts, "counts"), (reported, "reported"), (runs, "runs")):
                    for name, count in state.get(key, {}).items():
                        table[name] = table.get(name, 0) + count
                problems += [{"seed": seed, **p} for p in state.get("problems", [])]
                seed += 1
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    hours = (time.perf_counter() - started) / 3600
    result = {
        "model": args.model, "platform": f"xcb {display}" if display else "offscreen", "hours": round(hours, 3),
        **total, "actions_per_minute": round(total["actions"] / max(hours * 60, 1e-9), 1),
        "crashes": len(crashes), "crashes_per_hour": round(len(crashes) / max(hours, 1e-9), 2),
        "hangs": sum(c["hang"] for c in crashes),
        "runs": runs, "processes": processes, "counts": counts, "reported_errors": reported,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "crash_details": crashes, "problems": problems[:100],
    }
    summary = {k: result[k] for k in ("model", "platform", "hours", "actions", "crashes", "hangs", "crashes_per_hour",
                                      "exceptions", "invariant_violations", "chunks_committed", "runs")}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
