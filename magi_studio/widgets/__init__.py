"""Small widgets of the main window: notice banner, engine status, job progress, the generation queue,
recent files menu, shortcuts dialog."""
