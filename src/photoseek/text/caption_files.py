"""Read caption files: image-caption pairs for `import-captions` and datasets for `eval`, one reader.

Formats are recognised by content, never by file name, because the common distributions
disagree with their suffixes (Flickr8k's `captions.txt` is a CSV; token files ship as `.txt`,
`.token` or `.csv`):
- JSON (first character `{` or `[`):
  - Karpathy split JSON (`dataset_flickr8k.json`, `dataset_flickr30k.json`, `dataset_coco.json`),
    filtered with `split` ("test", "val", "train", "restval");
  - COCO captions JSON (`captions_val2017.json`: `images` + `annotations`);
  - a `{file: [captions]}` object, or a list of `{"image": ..., "caption": ...}` records;
- the Flickr8k token file, when most of its first lines read `img.jpg#N<TAB>caption` (a space
  instead of the tab is tolerated);
- otherwise CSV, or TSV when the first line has a tab: `image,caption[,relevance]` rows, after an
  optional header row that names the columns (`file,caption` as `photoseek caption` writes it,
  `image,caption` as Flickr8k's captions.txt; see `_IMAGE_KEYS`, `_CAPTION_KEYS`). Rows sharing a
  caption with several images and a relevance number give graded relevance.

Oddities (duplicate ids, captions of unknown images, malformed lines) do not stop the read:
they are collected in `Dataset.issues` for the report.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from photoseek.errors import BadInput, NotFound

_TOKEN_LINE = re.compile(r"^(?P<image>\S+?)#(?P<number>\d+)\s+(?P<caption>.*\S)\s*$")
_SNIFF_LINES = 5
"""Non-empty lines looked at to tell a token file from a CSV."""
_IMAGE_KEYS = ("image", "file", "filename", "file_name", "path")
_CAPTION_KEYS = ("caption", "captions", "text", "sentence")
_GRADE_KEYS = ("relevance", "grade")
FORMATS = (
    "CSV or TSV rows image,caption (a header row such as file,caption or image,caption is optional), "
    "a Flickr8k token file, Karpathy or COCO captions JSON, a {file: [captions]} JSON map or a JSON "
    "list of {image, caption} records"
)
"""The accepted formats in one line, for errors and help texts."""


@dataclass(frozen=True)
class Dataset:
    """Images (paths relative to the images folder) and the reference captions of each."""

    format: str
    images: tuple[str, ...]
    captions: tuple[tuple[str, ...], ...]
    grades: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Graded relevance where the dataset has it: caption -> {image: grade}. Captions not in it
    are relevant to their own image only (binary)."""
    issues: tuple[str, ...] = ()

    @property
    def caption_count(self) -> int:
        return sum(len(c) for c in self.captions)


def load_dataset(path: str | Path, *, split: str | None = None, flag: str = "--dataset") -> Dataset:
    """Read `path`, recognising its format; `split` applies to Karpathy files only. `flag` is the
    option that named the file, for the error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise NotFound(f"No captions file at {path}. Check the {flag} path.")
    text = _read_text(path)
    kind = _sniff(text)
    if kind == "json":
        dataset = _read_json(path, text, split, flag)
    elif kind == "token":
        dataset = _read_token_file(path, text)
    else:
        dataset = _read_table(text)
    if split is not None and dataset.format != "karpathy":
        raise BadInput(
            f"--split only applies to Karpathy split files (dataset_*.json); {path.name} is a "
            f"{dataset.format} file. Leave --split out."
        )
    if not dataset.images and kind == "csv":
        raise BadInput(f"{path} holds no captions. Give one of: {FORMATS}.")
    if not dataset.images:
        raise BadInput(f"{path} holds no captioned images{f' in split {split!r}' if split else ''}.")
    return dataset


class _Builder:
    """Collects captions per image in first-seen order, noting duplicates."""

    def __init__(self) -> None:
        self.captions: dict[str, list[str]] = {}
        self.grades: dict[str, dict[str, float]] = {}
        self.issues: list[str] = []

    def add(self, image: str, caption: str) -> None:
        caption = " ".join(caption.split())
        if not image or not caption:
            return
        self.captions.setdefault(image, []).append(caption)

    def build(self, format_name: str) -> Dataset:
        images = tuple(self.captions)
        return Dataset(
            format=format_name,
            images=images,
            captions=tuple(tuple(self.captions[i]) for i in images),
            grades=self.grades,
            issues=tuple(self.issues),
        )


def _sniff(text: str) -> str:
    """'json', 'token' or 'csv', from the text itself."""
    if text.lstrip()[:1] in ("{", "["):
        return "json"
    head = [line for line in text.splitlines()[: 10 * _SNIFF_LINES] if line.strip()][:_SNIFF_LINES]
    tokens = sum(_TOKEN_LINE.match(line) is not None for line in head)
    return "token" if head and tokens * 2 > len(head) else "csv"


def _read_json(path: Path, text: str, split: str | None, flag: str) -> Dataset:
    duplicates: list[str] = []
    try:
        data = json.loads(text, object_pairs_hook=lambda pairs: _no_dupes(pairs, duplicates))
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path} is not valid JSON ({exc}). Check the {flag} file.") from exc
    if isinstance(data, list) and data and all(isinstance(entry, dict) for entry in data):
        return _from_records(path, data)
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        if "annotations" in data:
            return _from_coco(data)
        return _from_karpathy(data, split)
    if isinstance(data, dict) and all(_is_caption_list(v) for v in data.values()):
        builder = _Builder()
        builder.issues += [
            f"image {key!r} appears more than once; its captions are merged"
            for key in duplicates
        ]
        for image, captions in data.items():
            for caption in [captions] if isinstance(captions, str) else captions:
                builder.add(image, caption)
        return builder.build("captions-by-file")
    raise BadInput(
        f"{path} is neither a Karpathy split file, a COCO captions file, a {{file: [captions]}} map "
        f"nor a list of {{image, caption}} records. Give one of: {FORMATS}."
    )


def _from_records(path: Path, records: list[dict]) -> Dataset:
    """`[{"image": "a.jpg", "caption": "..."}]` (or `captions: [...]`), the shape dataset exports use."""
    image_key = next((k for k in _IMAGE_KEYS if k in records[0]), None)
    caption_key = next((k for k in _CAPTION_KEYS if k in records[0]), None)
    if image_key is None or caption_key is None:
        raise BadInput(
            f"{path} is a list of records, but its first record has no image key ({', '.join(_IMAGE_KEYS)}) "
            f"or no caption key ({', '.join(_CAPTION_KEYS)})."
        )
    builder = _Builder()
    for number, record in enumerate(records, start=1):
        image, captions = record.get(image_key), record.get(caption_key)
        if not isinstance(image, str) or not _is_caption_list(captions):
            builder.issues.append(f"record {number} lacks a string {image_key!r} or {caption_key!r}; skipped")
            continue
        for caption in _as_list(captions):
            builder.add(image, caption)
    return builder.build("json-records")


def _no_dupes(pairs: list[tuple[str, object]], duplicates: list[str]) -> dict[str, object]:
    """Keep every caption of a key that appears twice (json would keep only the last)."""
    merged: dict[str, object] = {}
    for key, value in pairs:
        if key in merged and _is_caption_list(value) and _is_caption_list(merged[key]):
            duplicates.append(key)
            merged[key] = _as_list(merged[key]) + _as_list(value)
        else:
            merged[key] = value
    return merged


def _is_caption_list(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _as_list(value: object) -> list[str]:
    """A caption or a list of them (as `_is_caption_list` checked) as a list."""
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _from_karpathy(data: dict, split: str | None) -> Dataset:
    builder = _Builder()
    seen: set[str] = set()
    for entry in data["images"]:
        if split is not None and entry.get("split") != split:
            continue
        name = "/".join(p for p in (entry.get("filepath", ""), entry.get("filename", "")) if p)
        if name in seen:
            builder.issues.append(f"image {name!r} listed twice; the second entry is ignored")
            continue
        seen.add(name)
        for sentence in entry.get("sentences", []):
            builder.add(name, sentence.get("raw") or " ".join(sentence.get("tokens", [])))
    return builder.build("karpathy")


def _from_coco(data: dict) -> Dataset:
    builder = _Builder()
    names: dict[object, str] = {}
    for image in data["images"]:
        if image.get("id") in names:
            builder.issues.append(f"image id {image.get('id')} listed twice; the second entry is ignored")
            continue
        names[image.get("id")] = image.get("file_name", "")
    seen_ids: set[object] = set()
    unknown = 0
    for note in data["annotations"]:
        if note.get("id") is not None and note.get("id") in seen_ids:
            builder.issues.append(f"caption id {note['id']} appears twice; the second is ignored")
            continue
        seen_ids.add(note.get("id"))
        name = names.get(note.get("image_id"))
        if name is None:
            unknown += 1
            continue
        builder.add(name, note.get("caption", ""))
    if unknown:
        builder.issues.append(f"{unknown} captions refer to image ids not in the 'images' list; ignored")
    return builder.build("coco")


def _read_token_file(path: Path, text: str) -> Dataset:
    builder = _Builder()
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _TOKEN_LINE.match(line)
        if match is None:
            builder.issues.append(f"line {number} is not 'image#N<TAB>caption'; skipped")
            continue
        key = (match["image"], match["number"])
        if key in seen:
            builder.issues.append(f"caption id {key[0]}#{key[1]} appears twice (line {number}); skipped")
            continue
        seen.add(key)
        builder.add(match["image"], match["caption"])
    if not builder.captions:
        raise BadInput(
            f"{path} has no 'image.jpg#N<TAB>caption' lines. Give a Flickr8k token file, a .json or a .csv."
        )
    return builder.build("flickr-token")


def _read_table(text: str) -> Dataset:
    """CSV (TSV when the first line has a tab) rows of image, caption and an optional relevance, in
    that order or in the order a header row names them."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    rows = [row for row in csv.reader(lines, delimiter="\t" if "\t" in first else ",") if any(map(str.strip, row))]
    columns = _named_columns(rows[0]) if rows else None
    image_at, caption_at, grade_at = columns or (0, 1, 2)
    builder = _Builder()
    best: dict[str, tuple[float, str]] = {}
    seen: set[tuple[str, ...]] = set()
    for number, row in enumerate(rows[bool(columns):], start=1 + bool(columns)):
        if len(row) <= max(image_at, caption_at):
            builder.issues.append(f"row {number} has fewer than {max(image_at, caption_at) + 1} columns; skipped")
            continue
        key = (row[image_at].strip(), row[caption_at].strip())
        if key in seen:
            builder.issues.append(f"row {number} repeats ({key[0]}, {key[1][:40]!r}); skipped")
            continue
        seen.add(key)
        image, caption = key
        grade = _grade(row[grade_at] if grade_at is not None and grade_at < len(row) else "", number, builder.issues)
        if grade is None:
            builder.add(image, caption)
            continue
        builder.grades.setdefault(caption, {})[image] = grade
        if grade > best.get(caption, (0.0, ""))[0]:
            best[caption] = (grade, image)
    for caption, (_, image) in best.items():
        builder.add(image, caption)
    return builder.build("csv")


def _named_columns(row: list[str]) -> tuple[int, int, int | None] | None:
    """(image, caption, relevance) column numbers when `row` is a header naming them, else None."""
    names = [cell.strip().lower() for cell in row]
    image = next((i for i, name in enumerate(names) if name in _IMAGE_KEYS), None)
    caption = next((i for i, name in enumerate(names) if name in _CAPTION_KEYS), None)
    if image is None or caption is None:
        return None
    return image, caption, next((i for i, name in enumerate(names) if name in _GRADE_KEYS), None)


def _grade(cell: str, number: int, issues: list[str]) -> float | None:
    """The optional relevance column: how relevant the image is to the caption (0 = not)."""
    if not cell.strip():
        return None
    try:
        return float(cell)
    except ValueError:
        issues.append(f"row {number}: relevance {cell!r} is not a number; read as 1")
        return 1.0


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text ({exc}). Save it as UTF-8.") from exc
