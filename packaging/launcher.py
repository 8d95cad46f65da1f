"""Entry script of the PyInstaller bundle (packaging/magi-studio.spec): the `magi-studio` command.

Same as the installed console script: no argument opens the app, `generate` / `render` run without a window.
A bundle started with no locale at all (`env -i`, some service managers and launchers) gets C.UTF-8, the
locale Qt would switch to anyway, without Qt's four-line warning about it.
"""

import multiprocessing
import os
import sys

from magi_studio.cli import main

if __name__ == "__main__":
    # A several-GPU run spawns its other ranks from this executable: they must start as ranks, not as the app.
    multiprocessing.freeze_support()
    if sys.platform.startswith("linux") and not any(os.environ.get(k) for k in ("LC_ALL", "LC_CTYPE", "LANG")):
        os.environ["LANG"] = "C.UTF-8"
    sys.exit(main())
