"""Long passages are read in overlapping windows that cover all of them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from assistant.support.pairmodel import aggregate_windows, sentence_windows

FILLER = [
    f"On day {i} the {town} council reviewed the {thing} budget and adjourned without a vote."
    for i, (town, thing) in enumerate(
        (t, x)
        for t in ("northern", "southern", "eastern", "western", "central")
        for x in ("library", "harbour", "school", "museum", "park", "bus")
    )
]
FACT = "The old stone bridge over the river was closed to all traffic for repairs in March."
CLAIM = "The bridge over the river was closed for repairs in March."


@pytest.mark.parametrize(
    ("lengths", "budget"),
    [([5] * 20, 16), ([3, 40, 3, 3, 3], 10), ([1], 8), ([7, 7, 7], 100), ([9] * 7, 9)],
)
def test_windows_cover_every_sentence_within_budget(lengths: list[int], budget: int) -> None:
    runs = sentence_windows(lengths, budget)
    covered = sorted({i for r in runs for i in r})
    assert covered == list(range(len(lengths)))
    for r in runs:
        assert len(r) == 1 or sum(lengths[i] for i in r) <= budget
    assert all(b.start > a.start for a, b in itertools.pairwise(runs))


def test_windows_overlap_so_neighbours_meet() -> None:
    runs = sentence_windows([5] * 12, 20)  # four sentences a window
    assert len(runs) > 3
    assert all(set(a) & set(b) for a, b in itertools.pairwise(runs))


def test_aggregation_rules() -> None:
    probs = np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.2, 0.75, 0.05], [0.3, 0.3, 0.4]])
    owners = [0, 0, 0, 1]
    np.testing.assert_allclose(aggregate_windows(probs, owners, 2)[0], probs[1])
    np.testing.assert_allclose(aggregate_windows(probs, owners, 2, "most-relevant")[0], probs[2])
    cw = aggregate_windows(probs, owners, 2, "classwise")[0]
    np.testing.assert_allclose(cw, np.array([0.7, 0.75, 0.05]) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(aggregate_windows(probs, owners, 2)[1], probs[3])
    with pytest.raises(ValueError, match="window rule"):
        aggregate_windows(probs, owners, 2, "mean")


@pytest.fixture(scope="module", params=["fit", "max-support"])
def judge(request):
    from assistant.support.minilm_nli import DEFAULT_NLI_WEIGHTS, MiniLMNLIJudge
    from assistant.support.models import load_sentence_model

    if not DEFAULT_NLI_WEIGHTS.exists():
        pytest.skip("no shipped support judge weights")
    return MiniLMNLIJudge(load_sentence_model(), clinical_gate=False, window_rule=request.param)


def test_a_fact_past_the_first_256_tokens_is_read(judge) -> None:
    passage = " ".join([*FILLER, FACT])
    tokens = judge.encoder.tokenizer.tokenize(" ".join(FILLER))
    assert len(tokens) > 2 * judge.encoder.max_length  # the fact lies past two windows
    cut = judge.encoder.tokenizer.convert_tokens_to_string(tokens[: judge.encoder.max_length])
    assert "bridge" not in cut
    expanded, owners = judge.encoder.windows([(CLAIM, passage)])
    assert len(expanded) > 2 and set(owners) == {0}
    assert any(FACT in window for _, window in expanded)
    supported = judge.probabilities([(CLAIM, passage)])[0]
    alone = judge.probabilities([(CLAIM, FACT)])[0]
    # what a cut to the first window would have said
    first = judge.predict_items(judge.encoder.tokenize([(CLAIM, passage)], [expanded[0][1]]))[0]
    without = judge.probabilities([(CLAIM, " ".join(FILLER))])[0]
    assert alone.argmax() == 0 and supported.argmax() == 0, (alone, supported)
    assert first[0] < 0.5 and without[0] < 0.5, (first, without)
    assert supported[0] > max(first[0], without[0]) + 0.25, (supported, first, without)
