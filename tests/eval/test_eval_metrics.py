"""Retrieval metrics against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from photoseek.eval.metrics import query_metrics, ranked_grades, summarize


def metrics_for(scores: list[float], grades: list[float]) -> dict[str, float]:
    per_query = query_metrics(ranked_grades(np.array([scores]), np.array([grades])))
    return {name: float(values[0]) for name, values in per_query.items()}


def test_one_relevant_item_ranked_third():
    m = metrics_for([0.9, 0.5, 0.7], [0, 1, 0])
    assert m["rank"] == 3
    assert (m["R@1"], m["R@5"]) == (0.0, 1.0)
    assert (m["P@1"], m["P@5"]) == (0.0, pytest.approx(1 / 5))
    assert m["nDCG@10"] == pytest.approx(1 / math.log2(4))
    assert m["AP@10"] == pytest.approx(1 / 3)


def test_relevant_item_first_is_perfect():
    m = metrics_for([0.2, 0.9, 0.1], [0, 1, 0])
    assert m["rank"] == 1
    assert m["R@1"] == m["P@1"] == m["nDCG@10"] == m["AP@10"] == 1.0


@pytest.mark.parametrize("grades", [[1, 0, 0], [0, 1, 0]])
def test_ties_count_against_the_query(grades):
    m = metrics_for([0.5, 0.5, 0.1], grades)
    assert m["rank"] == 2
    assert m["R@1"] == 0.0
    assert m["nDCG@10"] == pytest.approx(1 / math.log2(3))


def test_constant_scores_rank_the_relevant_item_last():
    m = metrics_for([0.3] * 5, [0, 0, 1, 0, 0])
    assert m["rank"] == 5


def test_k_larger_than_the_gallery():
    m = metrics_for([0.9, 0.8, 0.7], [0, 1, 0])
    assert m["R@20"] == 1.0
    assert m["P@20"] == pytest.approx(1 / 20)
    assert m["P@5"] == pytest.approx(1 / 5)
    assert m["nDCG@10"] == pytest.approx(1 / math.log2(3))


def test_several_relevant_items():
    m = metrics_for([0.9, 0.8, 0.7, 0.6], [0, 1, 0, 1])
    assert m["rank"] == 2
    assert m["R@1"] == 0.0 and m["R@5"] == 1.0
    assert m["P@5"] == pytest.approx(2 / 5)
    assert m["AP@10"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert m["nDCG@10"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))


def test_graded_relevance():
    m = metrics_for([0.9, 0.8, 0.7], [1, 3, 0])
    dcg = 1 + 3 / math.log2(3)
    ideal = 3 + 1 / math.log2(3)
    assert m["nDCG@10"] == pytest.approx(dcg / ideal)
    assert m["rank"] == 1 and m["AP@10"] == 1.0


def test_tied_relevant_items_of_different_grades_put_the_lesser_first():
    m = metrics_for([0.5, 0.5], [3, 1])
    assert m["nDCG@10"] == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))


def test_ap_counts_only_the_cutoff():
    grades = [0] * 10 + [1]
    m = metrics_for(list(np.linspace(1, 0, 11)), grades)
    assert m["rank"] == 11
    assert m["AP@10"] == 0.0 and m["nDCG@10"] == 0.0 and m["R@20"] == 1.0


def test_summary_over_queries():
    ranked = ranked_grades(
        np.array([[0.9, 0.1, 0.2], [0.1, 0.2, 0.9], [0.9, 0.8, 0.1]]),
        np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]]),
    )
    summary = summarize(query_metrics(ranked))
    assert summary["R@1"] == pytest.approx(1 / 3)
    assert summary["median_rank"] == 3.0
    assert summary["mean_rank"] == pytest.approx((1 + 3 + 3) / 3)
    assert "mAP@10" in summary and "AP@10" not in summary


def test_a_query_without_relevant_items_is_refused():
    with pytest.raises(ValueError, match="relevant"):
        query_metrics(np.array([[0.0, 0.0]]))
