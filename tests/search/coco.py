"""The COCO-mini photos with one caption each as a note: a real library for the calibrated search tests.

The real all-MiniLM-L6-v2 is the text signal; the tiny random-weight CLIP is an image signal that
knows nothing about these photos.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from tests.helpers import run_json, shared_data

COCO = shared_data("coco-mini")
AVAILABLE = (COCO / "captions_by_file.json").exists()


def notes_csv(path: Path, files: list[str], captions: dict[str, list[str]], keep: int | None = None) -> Path:
    """A captions CSV with caption 1 of each photo, or of the first `keep` only."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "caption"])
        writer.writerows([(str(COCO / f), captions[f][0]) for f in files[:keep]])
    return path


def bare(db: Path) -> Path:
    """The same library before any note (a copy made by `build`), for tests that add only a few."""
    return db.with_name("bare.db")


def captions() -> dict[str, list[str]]:
    """file name -> its five COCO captions."""
    return json.loads((COCO / "captions_by_file.json").read_text())


def build(work: Path, clip_dir: Path) -> tuple[Path, list[str], dict[str, list[str]]]:
    """(catalog, files, captions): every photo indexed, caption 1 of each imported as its note."""
    texts = captions()
    files = sorted(texts)
    db = work / "coco.db"
    run_json("index", COCO, "--db", db, "--model-path", clip_dir)
    shutil.copy(db, bare(db))
    run_json("import-captions", notes_csv(work / "notes.csv", files, texts), "--db", db)
    return db, files, texts

NONSENSE = [  # queries no photo library should answer (the bench and the tests share them)
    "quarterly tax spreadsheet", "qwzxv", "blorft minging", "mortgage refinancing terms", "xkcd 9931 zzq",
    "the annual general meeting minutes", "compile the kernel module", "photosynthesis enzyme kinetics",
    "vwlq prrt", "invoice number 88213", "recursive descent parser", "cryptocurrency wallet seed phrase",
    "sql injection payload", "zyxwv utsrq", "thermodynamics lecture notes", "password reset email",
    "quantum chromodynamics", "gdpr compliance checklist", "lorem ipsum dolor sit amet", "fjordblik qqq",
]
