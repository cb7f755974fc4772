"""A CLIP that knows the COCO library: built by hand as two small ONNX towers, so no training is needed.

- Text tower: each token has a random 64-d vector weighted by its rarity in the library's texts
  (IDF, the way a model trained on the library learns to ignore "a" and "of"); a text is the sum of
  its tokens' vectors, i.e. a weighted bag of words.
- Image tower: the picture, pooled to 12x12 and normalised, is matched against a remembered thumbnail
  of every library photo (a sharp softmax over cosines) and returns that photo's *caption 2* through
  the text tower. So the image signal reads real pixels through the indexer, and knows each photo by a
  description the user never typed: caption 1 is the note (the text signal), captions 3-5 are queries.

Its zero-shot accuracy is that of a bag of words of one other caption: informative, weaker than
MiniLM on the note, and wrong in its own places, which is what a fusion has to cope with.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from photoseek.models.clip import open_model_dir

DIM = 256
POOL = 4
SHARPNESS = 300.0


def build(base: Path, out: Path, photos: list[Path], seen: list[str], remembered: list[str]) -> Path:
    """A model folder beside `base` (a CLIP folder whose tokenizer and preprocessing it keeps) whose
    image of photos[i] is the text of remembered[i]; token weights come from the `seen` texts."""
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("*.onnx"))
    config = json.loads((out / "config.json").read_text())
    config.update(embed_dim=DIM, model_id="photoseek-test/informed-bag-of-words")
    (out / "config.json").write_text(json.dumps(config))
    tokenizer = open_model_dir(base).tokenizer
    _save(_text_tower(_token_table(tokenizer, seen, int(config["text_cfg"]["vocab_size"]))), out / "textual")
    shutil.copy(base / "visual" / "model.onnx", out / "visual" / "model.onnx")  # complete, to use the text tower
    model = open_model_dir(out)
    captions = model.encode_texts(remembered)
    pixels = np.stack([model.preprocess(Image.open(p).convert("RGB")) for p in photos])
    _save(_image_tower(_thumbnails(pixels), captions), out / "visual")
    return out


def _token_table(tokenizer, texts: list[str], vocab: int) -> np.ndarray:
    """(vocab, DIM) random token vectors scaled by IDF over `texts`; padding and the start/end marks
    weigh nothing."""
    ids, mask = tokenizer(texts)
    documents = np.zeros(vocab)
    for row, keep in zip(ids, mask):
        documents[np.unique(row[keep.astype(bool)])] += 1
    idf = np.log((1 + len(texts)) / (1 + documents))
    idf[[0, vocab - 2, vocab - 1]] = 0.0  # "!" pads; <|startoftext|>, <|endoftext|>
    rng = np.random.default_rng(20)
    return (rng.standard_normal((vocab, DIM)) * idf[:, None]).astype(np.float32)


def _thumbnails(pixels: np.ndarray) -> np.ndarray:
    """(n, 3, H, W) to (n, features) unit rows, computed as the image tower computes them."""
    n, c, h, w = pixels.shape
    pooled = pixels.reshape(n, c, h // POOL, POOL, w // POOL, POOL).mean(axis=(3, 5)).reshape(n, -1)
    centred = pooled - pooled.mean(axis=1, keepdims=True)
    return (centred / np.linalg.norm(centred, axis=1, keepdims=True)).astype(np.float32)


def _text_tower(table: np.ndarray) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Gather", ["table", "text"], ["tokens"]),
        helper.make_node("ReduceSum", ["tokens", "axis1"], ["embedding"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "bag_of_words",
        [helper.make_tensor_value_info("text", TensorProto.INT64, ["n", "length"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", DIM])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([1], np.int64), "axis1")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _image_tower(thumbnails: np.ndarray, captions: np.ndarray) -> onnx.ModelProto:
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[POOL, POOL], strides=[POOL, POOL]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["flat", "mean"], ["centred"]),
        helper.make_node("ReduceL2", ["centred"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Div", ["centred", "norm"], ["unit"]),
        helper.make_node("MatMul", ["unit", "thumbnails"], ["cosines"]),
        helper.make_node("Mul", ["cosines", "sharpness"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["which"], axis=1),
        helper.make_node("MatMul", ["which", "captions"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "remembered_photos",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", DIM])],
        [numpy_helper.from_array(thumbnails.T.copy(), "thumbnails"),
         numpy_helper.from_array(captions.astype(np.float32), "captions"),
         numpy_helper.from_array(np.array(SHARPNESS, np.float32), "sharpness")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save(model: onnx.ModelProto, folder: Path) -> None:
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
