"""Evaluation harness: how well a model and search mode retrieve images for captions, and caption quality.

    from photoseek.eval import RunSpec, evaluate, load_dataset, write_report
    dataset = load_dataset("dataset_flickr30k.json", split="test")
    evaluation = evaluate(dataset, Path("flickr30k-images"), [RunSpec(model="ViT-B-32__openai")])
    write_report(evaluation, Path("eval-out"))
"""

from photoseek.eval.captions import CaptionScores, score_caption_files, score_captions
from photoseek.eval.report import summary_rows, to_dict, write_report
from photoseek.eval.runner import MODES, Evaluation, RunResult, RunSpec, default_cache_dir, evaluate
from photoseek.text.caption_files import Dataset, load_dataset

__all__ = [
    "MODES",
    "CaptionScores",
    "Dataset",
    "Evaluation",
    "RunResult",
    "RunSpec",
    "default_cache_dir",
    "evaluate",
    "load_dataset",
    "score_caption_files",
    "score_captions",
    "summary_rows",
    "to_dict",
    "write_report",
]
