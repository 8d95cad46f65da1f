"""FakePrompts: the ProjectController's questions (save changes, recover, replace, file choosers) answered
as a test says, with every question remembered — the seam magi_studio.dialogs.project_prompts leaves."""

from __future__ import annotations

from magi_studio.dialogs.project_prompts import CANCEL, RECOVER


class FakePrompts:
    """Answers the controller's questions as the test says, and remembers what was asked."""

    def __init__(self) -> None:
        self.unsaved, self.recover, self.replace = CANCEL, RECOVER, True
        self.open_answer = self.save_answer = None
        self.stop = True  # a run in progress is stopped when asked (a test that keeps working says so)
        self.resume = False  # an interrupted run is not resumed unless a test says so
        self.asked: list[tuple[str, str]] = []
        self.asked_untitled: list[bool] = []  # per unsaved-changes question: was the project untitled

    def unsaved_changes(self, name: str, untitled: bool = False) -> str:
        self.asked.append(("unsaved", name))
        self.asked_untitled.append(untitled)
        return self.unsaved

    def stop_run(self, stop_text: str, run_ended=None) -> bool:
        self.asked.append(("stop_run", stop_text))
        return self.stop

    def offer_recovery(self, name: str, autosaved_at: str, *, saved: bool = True) -> str:
        self.asked.append(("recover", name))
        return self.recover

    def offer_resume(self, finished: int, total: int) -> bool:
        self.asked.append(("resume", f"{finished} of {total}"))
        return self.resume

    def confirm_replace(self, path) -> bool:
        self.asked.append(("replace", str(path)))
        return self.replace

    def open_path(self, folder: str):
        self.asked.append(("open_path", folder))
        return self.open_answer

    def save_path(self, suggested: str):
        self.asked.append(("save_path", suggested))
        return self.save_answer
