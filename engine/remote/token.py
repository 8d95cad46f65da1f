"""The remote engine's bearer token: made on the server's first run, kept in a file only its owner can read.

The server and every client read the same token (the user copies the file to the laptop, or pastes the
text into the studio). It is compared in constant time (hmac.compare_digest). A token file that others
may read is refused, as ssh refuses such a key.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from magi_engine.errors import ConfigError

#: Token lengths accepted (a generated one is 43 characters).
MIN_TOKEN_CHARS, MAX_TOKEN_CHARS = 16, 512


def default_token_path() -> Path:
    """$XDG_CONFIG_HOME/magi-studio/remote-token (~/.config/... when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "magi-studio" / "remote-token"


def check_token(token: str) -> str:
    """The token itself when it is printable ASCII of a sensible length; ConfigError if not."""
    if not MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS or not (token.isascii() and token.isprintable()) \
            or " " in token:
        raise ConfigError(f"A remote engine token must be {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} printable characters "
                          "without spaces.")
    return token


def read_token(path: str | os.PathLike) -> str:
    """The token in `path` (a regular file, not readable by others); ConfigError naming the file if not."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except OSError as error:
        raise ConfigError(f"Cannot read the token file '{path}': {error.strerror or error}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"The token file '{path}' is not a regular file.")
    if os.name == "posix" and info.st_mode & 0o077:
        raise ConfigError(f"The token file '{path}' can be read by other users; make it private "
                          f"(chmod 600 '{path}').")
    if info.st_size > MAX_TOKEN_CHARS + 2:
        raise ConfigError(f"The token file '{path}' is too long to hold a token.")
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Cannot read the token file '{path}' ({error}).") from None
    try:
        return check_token(text)
    except ConfigError as error:
        raise ConfigError(f"The token file '{path}' does not hold a token. {error}") from None


def load_or_create_token(path: str | os.PathLike) -> tuple[str, bool]:
    """(token, created): the token in `path`, or a new one written there with mode 0600."""
    path = Path(path)
    if os.path.lexists(path):
        return read_token(path), False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as error:
        raise ConfigError(f"Cannot create the token file '{path}': {error.strerror or error}.") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token, True


def same_token(given: object, expected: str) -> bool:
    """Constant-time comparison; anything but text is simply wrong."""
    if not isinstance(given, str) or not given.isascii():
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
