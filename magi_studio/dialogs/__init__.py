"""Dialogs: File > Export (export_dialog) and Edit > Settings (settings_dialog)."""
