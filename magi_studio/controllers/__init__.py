"""Controllers: the studio's long-running flows, between the document, the disk and the engine.

common        the session Protocol the controllers rely on, a serial background-task runner, autosave
generation    GenerationController: generate / regenerate / resume, stop; a run from its start to its end
run_state     the run's phases (the state machine's one table), job states, progress and its ETA
run_queue     the run's queue as the user sees and changes it: reorder, remove, pause / resume
job_planning  a run's LOADING and PLANNING: the project's model loaded, a request planned, its engine job started
job_events    a run's RUNNING and DRAINING: the engine's events, finished chunks written and committed to takes
reseeds       Regenerate From Here's new seeds, taken back when their request makes nothing
project       ProjectController: new, open, save, save as, recent files, close prompt, autosave, recovery

No widgets here: the main window connects their signals to its views and its actions to their slots.
"""
