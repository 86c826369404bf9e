"""The labelled sets' splits: fixed, disjoint by group, and test / non-commercial parts never
reach training data."""

from __future__ import annotations

import importlib.util
from collections import Counter

import pytest

from evals import judge_sets as js

NEW = ("mnli", "check_covid", "cad", "fm2", "fever_sym", "negation_nli", "breaking_nli")

pytestmark = pytest.mark.skipif(
    not (js.DEFAULT_DATA_DIR / "mnli_dev_matched" / "pairs.jsonl").exists(),
    reason="labelled sets not in ../shared/datasets/faithfulness",
)


@pytest.mark.parametrize("name", NEW)
def test_groups_never_cross_splits(name: str) -> None:
    parts = {split: js.LOADERS[name](split) for split in ("train", "dev", "test")}
    assert all(parts.values()), {k: len(v) for k, v in parts.items()}
    groups = {split: {p.group for p in pairs} for split, pairs in parts.items()}
    assert not groups["train"] & groups["test"]
    assert not groups["dev"] & groups["test"]
    assert not groups["train"] & groups["dev"]
    assert all(p.split == split for split, pairs in parts.items() for p in pairs)


def test_mnli_held_out_half_is_half_and_stable() -> None:
    test, train, dev = (js.load_mnli(s) for s in ("test", "train", "dev"))
    total = len(test) + len(train) + len(dev)
    assert total == 9815
    assert 0.45 < len(test) / total < 0.55
    assert [p.claim for p in js.load_mnli("test")[:50]] == [p.claim for p in test[:50]]
    assert set(Counter(p.label for p in test)) == {0, 1, 2}


def test_check_covid_training_leaves_out_healthver_test_overlap() -> None:
    rows = js._pairs("check_covid", js.DEFAULT_DATA_DIR)
    marked = [
        r
        for r in rows
        if r["split"] == "train"
        and (r["healthver_test_shared_abstract"] or r["near_dup_healthver_test"])
    ]
    assert len(marked) == 27
    shared = {(r["hypothesis"].strip(), r["premise"].strip()) for r in marked}
    train = js.load_check_covid("train")
    assert not shared & {(p.claim, p.passage) for p in train}
    assert len(train) + len(marked) == sum(r["split"] == "train" for r in rows)


def test_anli_is_evaluation_only() -> None:
    assert len(js.load_anli("test")) == 3198
    for split in ("train", "dev"):
        with pytest.raises(ValueError, match="non-commercial"):
            js.load_anli(split)
    assert "anli" not in js.TRAINABLE


def training_script():
    """``scripts/train_support_nli.py`` as a module (scripts are not a package)."""
    path = js.REPO_ROOT / "scripts" / "train_support_nli.py"
    spec = importlib.util.spec_from_file_location("train_support_nli", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_training_data_has_no_test_part_and_no_anli(tmp_path) -> None:
    mod = training_script()
    pairs = mod.build_pairs(js.DEFAULT_DATA_DIR, js.PERTURBATIONS, sets=("mnli", "fm2", "cad"))
    assert {d["split"] for d in pairs} == {"train", "dev"}
    assert {d["source"] for d in pairs} == {"mnli", "fm2", "cad", "corpus"}
    test_premises = {p.passage for p in js.load_mnli("test")}
    assert not test_premises & {d["passage"] for d in pairs if d["source"] == "mnli"}
    with pytest.raises(ValueError, match="not a training set"):
        mod.build_pairs(js.DEFAULT_DATA_DIR, js.PERTURBATIONS, sets=("anli",))


def test_distractor_pairs_are_built_from_train_parts_only() -> None:
    mod = training_script()

    def row(source: str, i: int, label: int, split: str = "train") -> dict:
        return {
            "claim": f"{source} claim {i}",
            "passage": f"{source} passage {i}.",
            "label": label,
            "source": source,
            "split": split,
        }

    pairs = [row(s, i, i % 3) for s in ("a", "b") for i in range(30)]
    pairs += [row("a", 99, 0, "dev")]
    out = mod.distractor_pairs(pairs, 0.2, seed=1)
    unrelated = [d for d in out if d["source"].startswith("unrelated:")]
    padded = [d for d in out if d["source"].startswith("padded:")]
    assert len(unrelated) == len(padded) == 12  # a fifth of each set's 30 train pairs, twice
    for d in unrelated:  # a claim against another set's passage: not enough information
        own = d["source"].split(":")[1]
        assert d["label"] == 2 and not d["passage"].startswith(own)
    for d in padded:  # the pair's own passage is kept whole, beside another set's, label kept
        own = d["source"].split(":")[1]
        i = int(d["claim"].split()[-1])
        assert f"{own} passage {i}." in d["passage"] and d["label"] == i % 3 != 2
    assert all(d["split"] == "train" and "99" not in d["claim"] for d in out)
    assert out == mod.distractor_pairs(pairs, 0.2, seed=1)  # seeded
