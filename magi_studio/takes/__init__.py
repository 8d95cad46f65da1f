"""The takes of a shot: the take tree (preview, switch, rename, delete) and the preview-mode bar.

    from magi_studio.takes import TakesView, PreviewModeBar
"""

from magi_studio.takes.preview_bar import PreviewModeBar
from magi_studio.takes.view import TakesView

__all__ = ["TakesView", "PreviewModeBar"]
