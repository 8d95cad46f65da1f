"""Dialogs: File > Export (export_dialog), Edit > Settings (settings_dialog, model_choice), and the project
questions (project_prompts: save changes, recover, file choosers)."""
