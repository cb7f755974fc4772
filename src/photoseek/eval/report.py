"""Write an evaluation out: JSON, a Markdown report, a Recall@K chart and per-query CSVs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from photoseek.eval.extra import require
from photoseek.eval.metrics import RECALL_KS
from photoseek.eval.runner import Evaluation, RunResult

SUMMARY_COLUMNS = ("R@1", "R@5", "R@10", "median_rank", "mean_rank")
"""What the stdout table and the Markdown comparison show per run and direction."""
_REPORT_COLUMNS = (*SUMMARY_COLUMNS, "P@10", "nDCG@10", "mAP@10")
_LISTED = 20


def to_dict(evaluation: Evaluation) -> dict[str, object]:
    dataset = evaluation.dataset
    return {
        "dataset": {
            "path": evaluation.dataset_path,
            "format": dataset.format,
            "split": evaluation.split,
            "images": len(dataset.images),
            "captions": dataset.caption_count,
            "images_found": evaluation.images_found,
            "missing_images": evaluation.missing,
            "unreadable_images": evaluation.unreadable,
            "issues": list(dataset.issues),
            "graded": bool(dataset.grades),
            "oracle_captions": evaluation.oracle_captions,
        },
        "runs": [
            {
                "label": run.spec.label,
                "model": run.model_id,
                "mode": run.spec.mode,
                "text_model": run.spec.text_model,
                "images_embedded": run.embedded,
                "images_reused": run.reused,
                "seconds": round(run.seconds, 3),
                "calibration": run.calibration,
                "directions": {
                    name: {"queries": len(result.queries), **_rounded(result.summary)}
                    for name, result in run.directions.items()
                },
            }
            for run in evaluation.runs
        ],
    }


def summary_rows(evaluation: Evaluation) -> list[tuple[str, str, list[str]]]:
    """(run label, direction, formatted SUMMARY_COLUMNS) for each run and direction."""
    rows = []
    for run in evaluation.runs:
        for direction, result in run.directions.items():
            cells = [_cell(result.summary, c) for c in SUMMARY_COLUMNS]
            rows.append((run.spec.label, direction.replace("_", " "), cells))
    return rows


def _cell(summary: dict[str, float], column: str) -> str:
    """Rates in percent, ranks as they are, one decimal."""
    value = summary[column]
    return f"{value:.1f}" if column.endswith("rank") else f"{100 * value:.1f}"


def write_report(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """Everything into `out_dir`; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.json", out_dir / "report.md", out_dir / "recall_at_k.png"]
    written[0].write_text(json.dumps(to_dict(evaluation), indent=2, ensure_ascii=False), encoding="utf-8")
    written[1].write_text(markdown(evaluation), encoding="utf-8")
    _plot_recall(evaluation, written[2])
    for run in evaluation.runs:
        for direction in run.directions:
            path = out_dir / f"queries-{_slug(run.spec.label)}-{direction}.csv"
            _write_queries(run, direction, path)
            written.append(path)
    return written


def markdown(evaluation: Evaluation) -> str:
    info = to_dict(evaluation)["dataset"]
    assert isinstance(info, dict)
    lines = [
        "# Retrieval evaluation",
        "",
        f"Dataset `{info['path']}` ({info['format']}"
        + (f", split {info['split']}" if info["split"] else "")
        + f"): {info['images_found']} of {info['images']} images found, {info['captions']} captions"
        + (f"; {info['oracle_captions']} per image used as its note" if info["oracle_captions"] else "")
        + ".",
        "",
        "| run | direction | queries | " + " | ".join(_REPORT_COLUMNS) + " |",
        "|---|---|---:|" + "---:|" * len(_REPORT_COLUMNS),
    ]
    for run in evaluation.runs:
        for direction, result in run.directions.items():
            cells = [run.spec.label, direction, str(len(result.queries))]
            cells += [_cell(result.summary, c) for c in _REPORT_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "R@K, nDCG and mAP in percent; ranks are 1-based. Models:", ""]
    lines += [f"- {run.spec.label}: `{run.model_id}`" for run in evaluation.runs]
    lines += ["", "How each signal is calibrated on this gallery (a flat signal weighs 0):", ""]
    lines += [f"- {run.spec.label}: {line}" for run in evaluation.runs for line in run.calibration]
    lines += _problems(info)
    return "\n".join(lines) + "\n"


def _problems(info: dict) -> list[str]:
    lines: list[str] = []
    for key, title in (
        ("missing_images", "Images not found"),
        ("unreadable_images", "Images that could not be read"),
        ("issues", "Dataset issues"),
    ):
        items = info[key]
        if items:
            lines += ["", f"## {title} ({len(items)})", ""]
            lines += [f"- {item}" for item in items[:_LISTED]]
            if len(items) > _LISTED:
                lines.append(f"- ... and {len(items) - _LISTED} more (see report.json)")
    return lines


def require_chart_tools() -> None:
    """Fail before an evaluation whose report would need them, not after its long embedding pass."""
    require("matplotlib")


def _plot_recall(evaluation: Evaluation, path: Path) -> None:
    require("matplotlib").use("Agg")
    plt = require("matplotlib.pyplot")

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for run in evaluation.runs:
        for direction, result in run.directions.items():
            summary = result.summary
            values = [100 * summary[f"R@{k}"] for k in RECALL_KS]
            label = f"{run.spec.label} ({direction.replace('_', ' ')})"
            axes.plot(RECALL_KS, values, marker="o", label=label)
    axes.set(xlabel="K", ylabel="Recall@K (%)", ylim=(0, 100), xticks=RECALL_KS, title="Recall@K")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _write_queries(run: RunResult, direction: str, path: Path) -> None:
    result = run.directions[direction]
    names = [n for n in result.metrics if n != "rank"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query", "relevant", "rank", "top_result", *names])
        for q, query in enumerate(result.queries):
            values = [f"{result.metrics[n][q]:.4g}" for n in names]
            rank = int(result.metrics["rank"][q])
            writer.writerow([query, result.relevant[q], rank, result.top[q], *values])


def _rounded(summary: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 6) for name, value in summary.items()}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")
