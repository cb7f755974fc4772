"""Topic lists: the default one shipped with the package, a user's file, and the one a catalog keeps.

A user's file is TOML (one table per topic, optional `description`) or plain text: one topic per
line, optionally `name: description`; blank lines and lines starting with `#` are skipped.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from photoseek.errors import BadInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_NAME = 60
"""Topic names are facet labels, not sentences."""


@dataclass(frozen=True)
class Topic:
    name: str
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "description": self.description}


@dataclass(frozen=True)
class Taxonomy:
    topics: tuple[Topic, ...]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.topics]

    def digest(self) -> str:
        """Changes whenever a name or description does, so stored topics know they are stale."""
        text = json.dumps([t.to_dict() for t in self.topics], sort_keys=True)
        return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()

    def to_json(self) -> str:
        return json.dumps([t.to_dict() for t in self.topics])

    @classmethod
    def from_json(cls, text: str) -> Taxonomy:
        return cls(tuple(Topic(d["name"], d.get("description", "")) for d in json.loads(text)))

    def with_topic(self, topic: Topic) -> Taxonomy:
        """This taxonomy plus `topic` (replacing the description of one of the same name)."""
        kept = tuple(t for t in self.topics if t.name != topic.name)
        return Taxonomy((*kept, topic))


def topic_name(raw: str) -> str:
    """A topic name as stored: trimmed, lower case, one line; or a clear error."""
    name = " ".join(raw.split()).lower()
    if not name:
        raise BadInput("A topic name cannot be empty.")
    if len(name) > MAX_NAME:
        raise BadInput(f"Topic name {raw[:MAX_NAME]!r}… is longer than {MAX_NAME} characters; use a short label.")
    return name


def default_taxonomy() -> Taxonomy:
    text = resources.files("photoseek.topics").joinpath("default.toml").read_text(encoding="utf-8")
    return _from_toml(text, "the default taxonomy")


def load_taxonomy(path: str | Path) -> Taxonomy:
    """A user's topic file, TOML when it ends in .toml, else plain text."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"Cannot read topics file {file}: {exc}. Give a UTF-8 text or TOML file.") from exc
    taxonomy = _from_toml(text, str(file)) if file.suffix.lower() == ".toml" else _from_lines(text)
    if not taxonomy.topics:
        raise BadInput(f"{file} lists no topics. Write one topic name per line (or TOML tables).")
    return taxonomy


def _from_toml(text: str, where: str) -> Taxonomy:
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{where} is not valid TOML: {exc}.") from exc
    topics = []
    for name, body in tables.items():
        description = body.get("description", "") if isinstance(body, dict) else str(body)
        topics.append(Topic(topic_name(name), " ".join(str(description).split())))
    return _unique(topics)


def _from_lines(text: str) -> Taxonomy:
    topics = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, description = line.partition(":")
        topics.append(Topic(topic_name(name), description.strip()))
    return _unique(topics)


def _unique(topics: list[Topic]) -> Taxonomy:
    """Later entries of a repeated name replace earlier ones (the file's last word counts)."""
    by_name = {t.name: t for t in topics}
    return Taxonomy(tuple(by_name.values()))
