"""Find candidate image files under the folders a user points at.

Photo folders live on NAS shares, external drives and synced folders, so
the walk must survive what those contain: symlink loops, folders linked
twice, vendor junk folders, unreadable folders and files that vanish while
we look.

Which files are candidates (the decoder checks the real content later):
- a name with an image extension (IMAGE_EXTENSIONS, any case, `.jfif` included) is one,
  without being opened, so big trees cost one stat per image;
- a name with a known non-image extension (NON_IMAGE_EXTENSIONS: documents, code, audio,
  video, archives, sidecars) is ignored without being opened;
- any other name (no extension, or one we do not know: `IMG_0001`, `photo.jpg.1`,
  `scan.2020-05-01`) has its first 32 bytes sniffed, and is a candidate when an image
  decoder recognises them; sniffing opens with O_NONBLOCK, so a FIFO never blocks the walk.
Reported with a reason (`on_error`) instead of being silently left out: files of formats
we cannot decode (UNSUPPORTED_EXTENSIONS: SVG, JPEG XL, Photoshop), named pipes, sockets
and devices, broken links, and folders or files that cannot be read.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from photoseek.ingest.decode import special_file_reason
from photoseek.ingest.reading import looks_like_image

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".jfi", ".jif", ".pjpeg", ".pjp", ".png", ".apng",
        ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".heic", ".heif", ".hif", ".avif",
        ".jp2", ".j2k", ".jpf", ".jpx",
    }
)
"""Lowercase extensions of files the decoder can open (JPEG XL has no decoder here)."""

UNSUPPORTED_EXTENSIONS: dict[str, str] = {
    ".svg": "SVG is not supported",
    ".svgz": "SVG is not supported",
    ".jxl": "JPEG XL is not supported (no decoder installed)",
    ".psd": "Photoshop documents are not supported",
}
"""Image formats a user may expect to be indexed, with the reason they are skipped (listed, not silent)."""

NON_IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        # documents and text
        ".txt", ".md", ".rst", ".pdf", ".doc", ".docx", ".odt", ".rtf", ".xls", ".xlsx", ".ods",
        ".ppt", ".pptx", ".odp", ".csv", ".tsv", ".json", ".xml", ".html", ".htm", ".css", ".epub",
        ".log", ".ini", ".cfg", ".conf", ".toml", ".yaml", ".yml", ".lock", ".srt", ".vtt", ".nfo",
        # photo sidecars and catalogs (THM/AAE are camera/iOS companions, not photos of their own)
        ".xmp", ".aae", ".thm", ".pp3", ".dop", ".lrcat", ".lrdata", ".db", ".sqlite", ".ds_store",
        # code and binaries
        ".py", ".pyc", ".js", ".ts", ".c", ".h", ".cpp", ".java", ".go", ".rs", ".rb", ".sh",
        ".o", ".so", ".dll", ".exe", ".bin", ".class", ".jar", ".wasm",
        # audio and video
        ".mp3", ".wav", ".flac", ".aac", ".m4a", ".ogg", ".opus", ".wma",
        ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".mts", ".m2ts", ".3gp", ".mpg", ".mpeg",
        # archives, disk images, fonts
        ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".iso", ".dmg",
        ".ttf", ".otf", ".woff", ".woff2",
    }
)
"""Lowercase extensions whose files are never images: skipped without being opened."""

SKIPPED_DIRS: frozenset[str] = frozenset(
    name.casefold()
    for name in (
        "@eaDir",  # Synology thumbnails
        "#recycle",  # Synology recycle bin
        "#snapshot",  # Synology snapshots
        "@Recycle",  # QNAP recycle bin
        ".@__thumb",  # QNAP thumbnails
        "$RECYCLE.BIN",  # Windows recycle bin
        "System Volume Information",  # Windows volume metadata
        "lost+found",  # fsck salvage
        "node_modules",
        "__pycache__",
        ".git",
        ".svn",
        ".hg",
        ".thumbnails",  # freedesktop thumbnail cache
        ".cache",
        ".Spotlight-V100",  # macOS indexing
        ".fseventsd",
        ".DocumentRevisions-V100",
        ".TemporaryItems",
        ".Trashes",
    )
)
"""Folders never entered, even with include_hidden (compared case-insensitively)."""

SKIPPED_DIR_PREFIXES: tuple[str, ...] = (".trash",)
"""Folder name prefixes never entered: .Trash, .Trash-1000 (per-user trash on drives)."""

APPLEDOUBLE_PREFIX = "._"
"""macOS resource-fork companions ('._IMG_1.jpg') are never images, even if hidden files are wanted."""

ErrorHandler = Callable[[Path, str], None]


@dataclass(frozen=True)
class FoundFile:
    """A candidate image, identified by its real path plus what tells us it changed."""

    path: Path
    """Absolute, symlinks resolved."""
    size: int
    mtime_ns: int


@dataclass
class _WalkState:
    """What the walk has seen so far, shared across roots so overlaps yield nothing twice."""

    include_hidden: bool
    on_error: ErrorHandler | None
    seen_dirs: set[tuple[int, int]] = field(default_factory=set)
    seen_files: set[str] = field(default_factory=set)

    def report(self, path: str, reason: str) -> None:
        """Pass a skipped path to the caller, if they asked to hear about them."""
        if self.on_error is not None:
            self.on_error(Path(path), reason)


def discover(
    roots: Sequence[Path],
    *,
    include_hidden: bool = False,
    on_error: ErrorHandler | None = None,
) -> Iterator[FoundFile]:
    """Yield candidate image files under `roots`, each real file once, in sorted order.

    Roots are checked now (FileNotFoundError / NotADirectoryError), before
    any walking; problems met during the walk go to `on_error(path, reason)`
    and the walk continues. A root may also be a single image file.
    """
    checked = [_check_root(Path(root)) for root in roots]
    return _walk_roots(checked, _WalkState(include_hidden, on_error))


def is_image_name(name: str) -> bool:
    """True when the file name has an image extension (any case)."""
    return _extension(name) in IMAGE_EXTENSIONS


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def is_wanted(path: Path, root: Path, *, include_hidden: bool = False, is_dir: bool = False) -> bool:
    """Whether a walk of `root` would visit `path` (a watcher asks this of each changed path)."""
    parts = path.relative_to(root).parts
    if any(_is_hidden(part) for part in parts) and not include_hidden:
        return False
    folders = parts if is_dir else parts[:-1]
    if any(_is_skipped_dir(part) for part in folders):
        return False
    return is_dir or (is_image_name(path.name) and not path.name.startswith(APPLEDOUBLE_PREFIX))


def _check_root(root: Path) -> str:
    """Real path of a usable root; raises with a message the CLI can print as is."""
    if not root.exists():
        raise FileNotFoundError(f"folder not found: {root}")
    if not root.is_dir() and not (root.is_file() and (is_image_name(root.name) or looks_like_image(root))):
        raise NotADirectoryError(f"not a folder or an image file: {root}")
    return os.path.realpath(root)


def _walk_roots(roots: list[str], state: _WalkState) -> Iterator[FoundFile]:
    """Walk each root in turn; a file root is yielded as itself."""
    for root in roots:
        if os.path.isdir(root):
            yield from _walk(root, state)
        else:
            found = _found_file(root, root, state)
            if found is not None:
                yield found


def _walk(root: str, state: _WalkState) -> Iterator[FoundFile]:
    """Depth-first walk with an explicit stack (deep trees must not hit the recursion limit)."""
    if not _first_visit(root, state):
        return
    stack = [root]
    while stack:
        directory = stack.pop()
        subdirs: list[str] = []
        for entry in _list_dir(directory, state):
            found = _visit_entry(directory, entry, subdirs, state)
            if found is not None:
                yield found
        stack.extend(reversed(subdirs))


def _list_dir(directory: str, state: _WalkState) -> list[os.DirEntry[str]]:
    """Entries of `directory` sorted by name; an unreadable folder is reported and skipped."""
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as exc:
        state.report(directory, _os_reason(exc, "cannot read folder"))
        return []


def _visit_entry(
    directory: str, entry: os.DirEntry[str], subdirs: list[str], state: _WalkState
) -> FoundFile | None:
    """Return `entry` if it is a wanted file; append it to `subdirs` if it is a wanted folder."""
    if _is_hidden(entry.name) and not state.include_hidden:
        return None
    try:
        is_dir = entry.is_dir()
        is_file = not is_dir and entry.is_file()
    except OSError as exc:
        state.report(entry.path, _os_reason(exc, "cannot inspect"))
        return None
    if is_dir:
        if not _is_skipped_dir(entry.name):
            real = _real_path(directory, entry)
            if _first_visit(real, state):
                subdirs.append(real)
    elif is_file:
        if _is_candidate(entry, state):
            return _found_file(entry.path, _real_path(directory, entry), state)
    else:
        _report_special(entry, state)
    return None


def _report_special(entry: os.DirEntry[str], state: _WalkState) -> None:
    """A FIFO, socket, device or broken link: listed with its reason, never opened."""
    try:
        mode = entry.stat().st_mode
    except OSError as exc:
        state.report(entry.path, "broken symbolic link" if entry.is_symlink() else _os_reason(exc, "cannot inspect"))
        return
    state.report(entry.path, special_file_reason(mode))


def _found_file(path: str, real: str, state: _WalkState) -> FoundFile | None:
    """Stat a candidate once per real path; one that vanished or is unreadable is reported."""
    if real in state.seen_files:
        return None
    try:
        info = os.stat(path)
    except OSError as exc:
        state.report(path, _os_reason(exc, "cannot inspect"))
        return None
    if not stat.S_ISREG(info.st_mode):
        state.report(path, special_file_reason(info.st_mode))
        return None
    state.seen_files.add(real)
    return FoundFile(Path(real), info.st_size, info.st_mtime_ns)


def _first_visit(directory: str, state: _WalkState) -> bool:
    """Mark a folder as seen by (device, inode); False if seen before (loops, overlapping roots)."""
    try:
        info = os.stat(directory)
    except OSError as exc:
        state.report(directory, _os_reason(exc, "cannot inspect folder"))
        return False
    key = (info.st_dev, info.st_ino)
    if key in state.seen_dirs:
        return False
    state.seen_dirs.add(key)
    return True


def _real_path(directory: str, entry: os.DirEntry[str]) -> str:
    """Real path of an entry; only symlinks need the (slow) realpath call."""
    if entry.is_symlink():
        return os.path.realpath(entry.path)
    return os.path.join(directory, entry.name)


def _is_candidate(entry: os.DirEntry[str], state: _WalkState) -> bool:
    """An image by extension, or by content when the extension says nothing (see the module docstring)."""
    if entry.name.startswith(APPLEDOUBLE_PREFIX):  # macOS resource forks merely look like images
        return False
    extension = _extension(entry.name)
    if extension in IMAGE_EXTENSIONS:
        return True
    if extension in UNSUPPORTED_EXTENSIONS:
        state.report(entry.path, UNSUPPORTED_EXTENSIONS[extension])
        return False
    return extension not in NON_IMAGE_EXTENSIONS and looks_like_image(Path(entry.path))


def _is_hidden(name: str) -> bool:
    """Unix convention: a leading dot hides a file or folder."""
    return name.startswith(".")


def _is_skipped_dir(name: str) -> bool:
    """System, vendor and tool folders that never hold the user's photos."""
    folded = name.casefold()
    return folded in SKIPPED_DIRS or folded.startswith(SKIPPED_DIR_PREFIXES)


def _os_reason(exc: OSError, fallback: str) -> str:
    """Short reason for an OS error met during the walk."""
    if isinstance(exc, FileNotFoundError):
        return "vanished during the scan"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    return f"{fallback}: {exc.strerror or exc}"
