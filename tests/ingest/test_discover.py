"""File discovery tests on trees built in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from photoseek.ingest.discover import IMAGE_EXTENSIONS, FoundFile, discover
from tests.helpers import shared_data

FORMATS = shared_data("formats")


def touch(path: Path, content: bytes = b"x") -> Path:
    """Create `path` (and its folders) with some bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def names(found: list[FoundFile], root: Path) -> list[str]:
    """Found paths relative to the (real) root, in yielded order."""
    real_root = Path(os.path.realpath(root))
    return [found_file.path.relative_to(real_root).as_posix() for found_file in found]


def collect(*roots: Path, **kwargs: object) -> tuple[list[FoundFile], list[tuple[Path, str]]]:
    """Run discover and gather both the files and the reported errors."""
    errors: list[tuple[Path, str]] = []
    found = list(discover(list(roots), on_error=lambda path, reason: errors.append((path, reason)), **kwargs))
    return found, errors


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A photo folder with the usual clutter."""
    root = tmp_path / "photos"
    for name in [
        "a.jpg",
        "b.JPEG",
        "c.PnG",
        "notes.txt",
        "movie.mp4",
        "noext",
        "2021/summer/beach.heic",
        "2021/summer/beach.HEIC.xmp",
        "2021/winter/snow.webp",
        "2021/img.tif",
        ".hidden/secret.jpg",
        ".dotfile.jpg",
        "._a.jpg",
        "@eaDir/a.jpg/SYNOPHOTO_THUMB_XL.jpg",
        "node_modules/pkg/logo.png",
        "#recycle/old.jpg",
        "$RECYCLE.BIN/x.jpg",
        ".Trash-1000/files/gone.jpg",
        "__pycache__/x.png",
    ]:
        touch(root / name)
    return root


def test_finds_images_recursively_in_sorted_order(tree: Path) -> None:
    found, errors = collect(tree)
    assert names(found, tree) == [
        "a.jpg",
        "b.JPEG",
        "c.PnG",
        "2021/img.tif",
        "2021/summer/beach.heic",
        "2021/winter/snow.webp",
    ]
    assert errors == []


def test_found_files_carry_real_path_size_and_mtime(tree: Path) -> None:
    touch(tree / "a.jpg", b"12345")
    os.utime(tree / "a.jpg", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    first = next(iter(discover([tree])))
    assert first == FoundFile(Path(os.path.realpath(tree / "a.jpg")), 5, 1_600_000_000_123_456_789)
    assert first.path.is_absolute()


def test_hidden_files_on_request_but_junk_folders_never(tree: Path) -> None:
    found, _ = collect(tree, include_hidden=True)
    assert names(found, tree) == [
        ".dotfile.jpg",
        "a.jpg",
        "b.JPEG",
        "c.PnG",
        ".hidden/secret.jpg",
        "2021/img.tif",
        "2021/summer/beach.heic",
        "2021/winter/snow.webp",
    ]


def test_extensions_cover_the_decoder_formats() -> None:
    wanted = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
    assert wanted <= IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)


def test_symlink_loop_is_survived(tree: Path) -> None:
    os.symlink("..", tree / "2021" / "summer" / "loop")
    os.symlink(".", tree / "self")
    found, errors = collect(tree)
    assert len(found) == 6
    assert errors == []


def test_symlinked_folder_inside_the_tree_is_not_walked_twice(tree: Path) -> None:
    os.symlink(tree / "2021" / "winter", tree / "0-winter-link")
    found, _ = collect(tree)
    assert names(found, tree).count("2021/winter/snow.webp") == 1
    assert len(found) == 6


def test_symlinked_folder_outside_the_tree_is_followed(tree: Path, tmp_path: Path) -> None:
    touch(tmp_path / "elsewhere" / "far.png")
    os.symlink(tmp_path / "elsewhere", tree / "linked")
    found, _ = collect(tree)
    far = Path(os.path.realpath(tmp_path / "elsewhere" / "far.png"))
    assert far in {found_file.path for found_file in found}


def test_symlinked_file_is_yielded_once_under_its_real_path(tree: Path) -> None:
    os.symlink(tree / "a.jpg", tree / "z-link.jpg")
    found, _ = collect(tree)
    assert names(found, tree).count("a.jpg") == 1
    assert "z-link.jpg" not in names(found, tree)


@pytest.mark.parametrize("order", ["outer_first", "inner_first", "same_twice"])
def test_overlapping_roots_yield_each_file_once(tree: Path, order: str) -> None:
    inner = tree / "2021"
    roots = {"outer_first": [tree, inner], "inner_first": [inner, tree], "same_twice": [tree, tree]}[order]
    found, _ = collect(*roots)
    assert sorted(names(found, tree)) == sorted(names(collect(tree)[0], tree))


def test_broken_symlink_is_reported(tree: Path) -> None:
    os.symlink(tree / "nowhere.jpg", tree / "broken.jpg")
    found, errors = collect(tree)
    assert len(found) == 6
    assert errors == [(tree / "broken.jpg", "broken symbolic link")]


def test_unreadable_folder_is_reported_and_skipped(tree: Path) -> None:
    locked = tree / "2021" / "winter"
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: chmod 000 does not block reading, so nothing to report")
        found, errors = collect(tree)
    finally:
        locked.chmod(0o755)
    assert "2021/winter/snow.webp" not in names(found, tree)
    assert errors == [(Path(os.path.realpath(locked)), "permission denied")]


def test_folder_that_fails_to_list_is_reported(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir
    locked = os.path.realpath(tree / "2021" / "winter")

    def scandir(path: str) -> object:
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found, errors = collect(tree)
    assert len(found) == 5
    assert errors == [(Path(locked), "permission denied")]


def test_file_that_vanishes_mid_walk_is_reported(tree: Path) -> None:
    errors: list[tuple[Path, str]] = []
    walk = discover([tree], on_error=lambda path, reason: errors.append((path, reason)))
    first = next(walk)
    (tree / "c.PnG").unlink()
    rest = list(walk)
    found_names = [found_file.path.name for found_file in [first, *rest]]
    assert found_names == ["a.jpg", "b.JPEG", "img.tif", "beach.heic", "snow.webp"]
    assert errors == [(tree / "c.PnG", "vanished during the scan")]


def test_missing_root_raises_before_walking(tree: Path) -> None:
    with pytest.raises(FileNotFoundError, match="folder not found"):
        discover([tree, tree / "missing"])


def test_non_image_file_root_raises(tree: Path) -> None:
    with pytest.raises(NotADirectoryError, match="not a folder"):
        discover([tree / "notes.txt"])


def test_image_file_root_is_yielded_as_itself(tree: Path) -> None:
    found, _ = collect(tree / "a.jpg", tree)
    assert names(found, tree) == names(collect(tree)[0], tree)
    assert names(found, tree)[0] == "a.jpg"


def test_hidden_root_given_explicitly_is_walked(tree: Path) -> None:
    found, _ = collect(tree / ".hidden")
    assert [found_file.path.name for found_file in found] == ["secret.jpg"]


@pytest.mark.skipif(not FORMATS.is_dir(), reason=f"shared test data not found at {FORMATS}")
def test_real_data_tree() -> None:
    found = list(discover([FORMATS]))
    suffixes = {found_file.path.suffix.lower() for found_file in found}
    assert {".jpg", ".png", ".heic", ".avif", ".webp", ".gif", ".tiff"} <= suffixes
    assert ".svg" not in suffixes and ".txt" not in suffixes
    assert len({found_file.path for found_file in found}) == len(found)
