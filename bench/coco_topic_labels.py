"""Derive reference topic labels for the coco-mini photos from their five human captions.

Rule: a photo has a topic of the default taxonomy when at least two of its five captions
contain one of the topic's keywords (whole words or phrases such as "hot dog", lower
case, a plural 's'/'es' allowed).
Two captions, so one annotator's aside does not make a topic. The keyword lists are short
and written from the topic descriptions, not tuned to the model. Writes
tests/topics/coco_topics.json: {file: [topics]}.

    python bench/coco_topic_labels.py [--data DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import shared_data  # noqa: E402
from measure import measured_run  # noqa: E402

KEYWORDS = {
    "food": "food pizza cake sandwich donut doughnut banana apple broccoli carrot hot_dog meal plate "
            "dish salad vegetable fruit bread dinner lunch breakfast dessert",
    "drinks": "coffee tea wine beer cocktail drink cup mug",
    "pets": "dog puppy cat kitten",
    "animals": "animal bird horse cow sheep elephant giraffe zebra bear cattle herd duck",
    "beach": "beach sand shore ocean surf surfer surfboard wave coast seaside",
    "mountains": "mountain hill peak slope",
    "city": "city street downtown building traffic sidewalk intersection urban",
    "nature": "tree forest field grass river lake landscape meadow woods",
    "concert": "concert stage band guitar singer",
    "sports": "tennis baseball soccer football frisbee ski skier skiing skateboard skateboarder snowboard "
              "surfing surfer racket bat ball game player",
    "people": "man woman men women person people couple group",
    "kids": "child children kid boy girl baby toddler",
    "party": "party birthday wedding celebration celebrate",
    "home": "kitchen living_room bedroom bathroom couch sofa bed toilet sink",
    "vehicles": "car bus truck motorcycle bike bicycle train airplane plane jet vehicle taxi",
    "boats": "boat ship sail sailboat yacht harbor dock",
    "travel": "airport luggage suitcase tourist hotel",
    "night": "night",
    "sunset": "sunset sunrise dusk",
    "snow": "snow snowy ski skier skiing snowboard",
    "art": "painting sculpture statue mural art",
    "architecture": "church tower bridge clock_tower cathedral",
    "documents": "document paper letter book newspaper",
    "screenshots": "screenshot",
    "receipts": "receipt invoice",
    "electronics": "computer laptop keyboard phone cellphone television tv monitor remote",
    "flowers": "flower bouquet vase blossom",
    "shopping": "shop store market",
    "work": "office desk",
    "selfies": "selfie",
}


def labels_for(captions: list[str]) -> list[str]:
    found = []
    for topic, words in KEYWORDS.items():
        pattern = re.compile(r"\b(" + "|".join(re.escape(w.replace("_", " ")) for w in words.split()) + r")(s|es)?\b")
        if sum(bool(pattern.search(c.lower())) for c in captions) >= 2:
            found.append(topic)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = shared_data()
    parser.add_argument("--data", type=Path, default=shared / "coco-mini")
    default_out = Path(__file__).resolve().parents[1] / "tests/topics/coco_topics.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    captions = json.loads((args.data / "captions_by_file.json").read_text())
    labels = {f: labels_for(captions[f]) for f in sorted(captions)}
    lines = ",\n".join(f"{json.dumps(f)}: {json.dumps(v)}" for f, v in labels.items())
    args.out.write_text("{\n" + lines + "\n}\n")  # one photo per line: easy to read and review
    counts = {t: sum(t in v for v in labels.values()) for t in KEYWORDS}
    print(json.dumps({t: n for t, n in counts.items() if n}), f"unlabelled: {sum(not v for v in labels.values())}")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
