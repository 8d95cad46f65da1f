"""`magi-studio render PROJECT -o OUT.mp4` (or `-o CUT.otio [--otio-clips chunk|shot]`): generate what the
storyboard is missing, then export it.

Headless and Qt-free. Shot by shot, in storyboard order (a continued shot needs the one before it),
the chunks of the active path that are empty or stale are generated with the project's model; each
finished chunk is written into the project and the project is saved at once, so an interrupted
render (Ctrl-C, a crash) keeps every finished chunk and the next render resumes from the first
missing one. Then the active takes are exported with a sidecar JSON (magi_studio.export); an output
ending in .otio is an OpenTimelineIO cut with its mp4 beside it (magi_studio.otio_export), with one
clip per chunk or, with --otio-clips shot, one per shot.

Errors are EngineError (ProjectError included): cli.main prints them as one `error: ...` line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from magi_engine.errors import ConfigError, ExportError
from magi_engine.events import CancelToken, ChunkFinished, Failed
from magi_engine.output_files import check_output_file
from magi_studio.document.model import ChunkState, storyboard_states
from magi_studio.document.observer import Document
from magi_studio.document.planning import ResultCommitter, plan_resume, sampling_for
from magi_studio.export import export_video, sidecar_path
from magi_studio.terminal_progress import TerminalProgress, format_seconds


def check_render_args(args: argparse.Namespace) -> None:
    """The output names, checked before the project opens and anything is generated (ExportError if wrong)."""
    output = Path(args.output)
    if getattr(args, "otio_clips", None) is not None and output.suffix.lower() != ".otio":
        raise ExportError(f"--otio-clips is for a timeline output ending in .otio, not '{output.name}'.")
    if output.suffix.lower() == ".otio":
        from magi_studio.otio_export import video_path

        outputs = [(output, "timeline"), (video_path(output), "video"), (sidecar_path(video_path(output)), "sidecar")]
    elif sidecar_path(output) == output:
        raise ExportError(f"Choose a video file name ending in .mp4 (or a timeline ending in .otio), not '{output.name}'.")
    else:
        outputs = [(output, "video"), (sidecar_path(output), "sidecar")]
    for path, what in outputs:
        check_output_file(path, what)


def run_render(args: argparse.Namespace) -> int:
    from magi_studio.document.store import open_project  # imports torch: not before the arguments are checked

    progress = TerminalProgress(enabled=not args.quiet)
    project, store = open_project(args.project)
    document = Document(project)
    if _needs_generation(project):
        from magi_engine.session import GenerationSession  # torch and the model only when something must be generated
        from magi_studio.cli import connect_engine

        engine = getattr(args, "engine", None)
        progress.message(f"connecting to {engine} ..." if engine else f"loading {project.settings.model} ...")
        from magi_studio.document.planning import memory_target

        target = memory_target(project.settings, project)  # fitted to the project, as the app fits it
        session = connect_engine(args) or GenerationSession.load(project.settings.model, width=target.width,
                                                                 height=target.height, window=target.window,
                                                                 chunks=target.chunks)
        if engine:
            check_remote_model(session.bundle, project.settings.model)
        try:
            generate_missing(document, store, session, progress)
        except KeyboardInterrupt:
            done = sum(s is ChunkState.DONE for states in storyboard_states(project).values() for s in states)
            progress.message(f"interrupted: {done} finished chunk(s) are saved in {store.path}; "
                             "render again to resume")
            return 130
    started = time.monotonic()
    timeline = None
    if str(args.output).lower().endswith(".otio"):  # the suffix decides: a timeline, with its mp4 beside it
        from magi_studio.otio_export import export_timeline

        written = export_timeline(project, store, args.output, clips=getattr(args, "otio_clips", None) or "chunk",
                                  progress=_export_progress(progress))
        timeline, outcome = written.timeline, written.video
    else:
        outcome = export_video(project, store, args.output, progress=_export_progress(progress))
    progress.message(f"wrote {outcome.video.frames} frames ({outcome.video.width}x{outcome.video.height}) to "
                     f"{outcome.path} in {format_seconds(time.monotonic() - started)}, details in {outcome.sidecar}"
                     + (f", the timeline in {timeline}" if timeline else ""))
    return 0


def check_remote_model(model, wanted: str) -> None:
    """The project's chunks must all come from its own model: a server with another one is refused."""
    from magi_engine.remote.client import serves_model

    if not serves_model(model.spec, model.name, wanted):
        raise ConfigError(f"The project uses the model '{wanted}'; the remote engine serves '{model.spec}'. Start "
                          f"the server with --model {wanted}, or change the project's model.")


def _needs_generation(project) -> bool:
    return any(s is not ChunkState.DONE for states in storyboard_states(project).values() for s in states)


def generate_missing(document: Document, store, session, progress: TerminalProgress | None = None,
                     cancel: CancelToken | None = None) -> int:
    """Generate every empty or stale chunk of the active paths, saving after each chunk; returns how many.

    Raises the engine's error when a generation fails (the chunks finished before it stay saved).
    """
    project = document.project
    made = 0
    for shot in list(project.shots):
        plan = plan_resume(document.project, store, shot.id,
                           sampling=sampling_for(project.settings, session.default_sampling), previews=False)
        if plan is None:
            continue
        if progress is not None:
            last = plan.start_index + len(plan.chunk_ids)
            progress.message(f"{shot.name}: generating chunks {plan.start_index + 1}-{last} of {len(shot.chunks)}")
        committer = ResultCommitter(plan, store, session.sampling_for(plan.request))
        for event in session.generate(plan.request, cancel):
            if progress is not None:
                progress.update(event)
            if isinstance(event, ChunkFinished):
                document.apply(committer.commit(document.project, event))
                store.save(document.project)
                made += 1
            elif isinstance(event, Failed):
                raise event.error
        if cancel is not None and cancel.is_set():
            break
    return made


def _export_progress(progress: TerminalProgress):
    """A terminal line for the export: frames written out of all, redrawn at most ten times a second."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if not progress.enabled or not progress.interactive or (now - last[0] < 0.1 and done < total):
            return
        last[0] = now
        progress.stream.write(f"\rexporting frame {done}/{total} ")
        progress.stream.flush()
        if done == total:
            progress.stream.write("\r\033[K")

    return report


if __name__ == "__main__":  # for debugging: python -m magi_studio.render PROJECT -o OUT.mp4
    from magi_studio.cli import main

    sys.exit(main(["render", *sys.argv[1:]]))
