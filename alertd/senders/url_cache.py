"""What apprise said of a channel URL, remembered between runs of ``alertd check``.

Validating a URL loads every apprise plugin (about half a second), which is most of
``alertd check``'s time however many rules a file has. The answer only changes with the URL,
with apprise's version or with alertd's checking code, so it is kept in the user's cache folder
(``$XDG_CACHE_HOME/alertd``, else ``~/.cache/alertd``), keyed by an HMAC of the installed
apprise and the URL under a random key kept beside it (mode 0600): the file holds no URL and
no secret, and its keys say nothing about them. A cache that cannot be read or written is
simply not used.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

KEPT = 2000  # answers kept; the oldest go first


def _folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "alertd"


def _key(folder: Path) -> bytes:
    path = folder / "key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        import secrets

        key = secrets.token_bytes(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
        return key


@lru_cache(maxsize=1)
def _version() -> str:
    """The installed apprise (its ``__init__.py``, which names its version) and the file that
    words the answers: either changed is a new cache (a file's size and time stand for its
    content). Found without importing apprise, and without ``importlib.metadata``, whose
    import and search of the installed packages were a fifth of ``alertd check``."""
    from alertd.senders import apprise_sender

    spec = find_spec("apprise")  # where it is, not imported
    if spec is None or spec.origin is None:
        raise FileNotFoundError("apprise is not installed")
    found = [os.stat(path) for path in (spec.origin, apprise_sender.__file__)]
    return " ".join(f"{status.st_size} {status.st_mtime_ns}" for status in found)


def _name(url: str, folder: Path) -> str:
    return hmac.new(_key(folder), f"{_version()}\n{url}".encode(), hashlib.sha256).hexdigest()


_loaded: dict[Path, dict[str, str | None]] = {}  # read once per process


def _load(folder: Path) -> dict[str, str | None]:
    if folder not in _loaded:
        found = json.loads((folder / "urls.json").read_text())
        _loaded[folder] = found if isinstance(found, dict) else {}
    return _loaded[folder]


def lookup(url: str) -> tuple[bool, str | None]:
    """(True, the answer) when this URL was checked before with this apprise version."""
    try:
        folder = _folder()
        answers = _load(folder)
        name = _name(url, folder)
    except (OSError, ValueError):
        return False, None
    if name in answers:
        answer = answers[name]
        return True, answer if isinstance(answer, str) else None
    return False, None


def remember(url: str, answer: str | None) -> None:
    try:
        folder = _folder()
        name = _name(url, folder)
        try:
            answers = _load(folder)
        except (OSError, ValueError):
            answers = {}
        answers.pop(name, None)
        answers[name] = answer
        while len(answers) > KEPT:
            answers.pop(next(iter(answers)))
        _loaded[folder] = answers
        temporary = folder / f"urls.json.{os.getpid()}"
        temporary.write_text(json.dumps(answers))
        os.replace(temporary, folder / "urls.json")
    except (OSError, ValueError):
        return
