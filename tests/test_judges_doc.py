"""The judges' section of docs/judges.md: figures from verdicts, the dev choice, the markers."""

from __future__ import annotations

import numpy as np
import pytest

from evals import judge_sets as js
from evals import judges_doc as jd

pytestmark = pytest.mark.skipif(
    not (js.DEFAULT_DATA_DIR / "mnli_dev_matched" / "pairs.jsonl").exists(),
    reason="labelled sets not in ../shared/datasets/faithfulness",
)


def _oracle(pairs: list[js.Pair], wrong: float) -> jd.Verdicts:
    """Verdicts that are right except on a seeded share of pairs."""
    rng = np.random.default_rng(0)
    y = np.array([p.label for p in pairs])
    lab = np.where(rng.random(len(y)) < wrong, (y + 1) % 3, y)
    score = np.where(lab == 0, 0.9, 0.1) + rng.random(len(y)) * 0.01
    return jd.Verdicts(score, np.where(lab == 1, 0.9, 0.05), lab)


def test_test_parts_are_test_and_subsamples_are_stable() -> None:
    mnli = jd.test_pairs("mnli", 300)
    assert len(mnli) == 300 and {p.split for p in mnli} == {"test"}
    assert [p.claim for p in jd.test_pairs("mnli", 300)] == [p.claim for p in mnli]
    wice = jd.test_pairs("wice", 0)
    assert len({p.unit for p in wice}) == 100
    se = jd.test_pairs("summedits", 80)
    assert len({p.source for p in se}) == 8 and len(se) == 80
    assert {p.split for p in jd.test_pairs("perturbations", 0)} == {"test"}


def test_figures_follow_the_verdicts() -> None:
    pairs = jd.test_pairs("healthver", 0)
    perfect = jd.test_figures("healthver", pairs, _oracle(pairs, 0.0), 20, 0.5)
    noisy = jd.test_figures("healthver", pairs, _oracle(pairs, 0.4), 20, 0.5)
    assert perfect["svr_auroc"]["value"] == 1.0 and perfect["acc3"]["value"] == 1.0
    assert noisy["acc3"]["value"] < 0.7 and noisy["svr_auroc"]["value"] < 0.9
    lo, hi = noisy["acc3"]["low"], noisy["acc3"]["high"]
    assert lo < noisy["acc3"]["value"] < hi


def test_dev_choice_and_section(tmp_path) -> None:
    dev, _ = jd.dev_pairs()
    assert {r["split"] for r in dev} == {"dev"}
    assert "anli" not in {r["source"] for r in dev}
    tests = {name: jd.test_pairs(name, 200) for name, _ in jd.TEST_SETS}
    results = []
    for name, wrong, ms in (("good-but-slow", 0.05, 900.0), ("fair", 0.3, 50.0), ("bad", 0.6, 20)):
        dv = _oracle(
            [js.Pair(r["claim"], "", r["label"], r["source"], "dev", "") for r in dev], wrong
        )
        res = {"name": name, "version": "v", "description": name, "ms": ms}
        res["dev"] = jd.dev_figures(dev, dv)
        res["test"] = {
            k: jd.test_figures(k, p, _oracle(p, wrong), 20, 0.5) for k, p in tests.items()
        }
        results.append(res)
    assert results[0]["dev"]["criterion"] > results[1]["dev"]["criterion"]
    assert results[1]["dev"]["criterion"] > results[2]["dev"]["criterion"]
    assert jd.choose_default(results) == "fair"  # the better one is too slow to verify with
    section = jd.render(results, ["`x`: not available"], "fair", "cmd")
    assert section.startswith(jd.BEGIN) and section.endswith(jd.END)
    assert "Default chosen on dev" in section and "`fair`" in section
    assert "`x`: not available" in section
    assert "short by" in section  # the fair judge misses targets and the note says by how much
