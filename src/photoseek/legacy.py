"""What the project's old name, imgsearch, left on a user's machine, found and carried over once.

photoseek was called imgsearch before it had a name of its own on PyPI. Nothing its users had is
lost: `$IMGSEARCH_*` variables are read as `$PHOTOSEEK_*` (with a one-line notice, so they can be
renamed where they are set), and the old data and cache folders are moved to the new names the
first time they are looked for. A folder move is one `rename`: it either happened or it did not.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

OLD_NAME = "imgsearch"
OLD_PREFIX = "IMGSEARCH_"
PREFIX = "PHOTOSEEK_"

log = logging.getLogger("photoseek")


def adopt_environment(environ: dict[str, str] | None = None) -> list[str]:
    """Copy each `$IMGSEARCH_X` the user still sets into an unset `$PHOTOSEEK_X`; say so once.

    Runs when the package is imported, before anything reads a variable, so every reader (and
    every child process: Ray workers, the server's jobs) sees the new names only."""
    env = os.environ if environ is None else environ
    adopted = []
    for old in sorted(name for name in env if name.startswith(OLD_PREFIX)):
        new = PREFIX + old[len(OLD_PREFIX):]
        if new not in env:
            env[new] = env[old]
            adopted.append(old)
    if adopted:  # logged at import, before the CLI's 'Note:' handler exists: hence the prefix
        pairs = ", ".join(f"${old} as ${PREFIX}{old[len(OLD_PREFIX):]}" for old in adopted)
        it = "them" if len(adopted) > 1 else "it"
        log.warning(f"Note: reading {pairs} ({OLD_NAME} is photoseek's old name); rename {it} where you set {it}.")
    return adopted


def adopt_folder(old: Path, new: Path, marker: str, what: str) -> Path:
    """`new`, after moving the old name's folder `old` there if only the old one holds `marker` (so
    a folder of another program that was also called imgsearch is left alone, and a catalog made
    under the new name is never replaced).

    Where the move cannot be made (another file system, no permission), the old folder is used
    where it is, so the user's data is still found."""
    if (new / marker).exists() or not (old / marker).exists():
        return new
    try:
        new.parent.mkdir(parents=True, exist_ok=True)
        os.rename(old, new)
    except OSError as exc:
        log.warning(f"using your {what} at {old} ({OLD_NAME} is photoseek's old name); "
                    f"it could not be moved to {new}: {exc.strerror or exc}.")
        return old
    log.warning(f"moved your {what} from {old} to {new} ({OLD_NAME} is photoseek's old name).")
    return new
