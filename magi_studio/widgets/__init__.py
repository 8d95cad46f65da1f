"""Small widgets of the main window: notice banner, engine status, job progress, shortcuts dialog."""
