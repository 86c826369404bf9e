"""JSON exports of guideline recommendations, such as the USPSTF Prevention TaskForce (ePSS) API.

The ePSS API's `specificRecommendations` records carry the recommendation text (HTML fragments
in places), a `grade` field (A, B, C, D or I) beside it and a title "Topic: Service -- Population".
Each record becomes one guideline document holding one recommendation block, graded exactly
as the `grade` field says. The issuing body is a property of the format (the API is the Task
Force's); a sidecar `<file>.meta.yaml` can still override any document field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from bs4 import BeautifulSoup

from ingest.errors import LoaderError
from ingest.loaders._common import LoadProblem, LoadResult, clean_line, slugify
from ingest.loaders.metadata import read_sidecar
from ingest.types import DocType, Document

USPSTF = "U.S. Preventive Services Task Force"
_GRADES = {"A", "B", "C", "D", "I"}


def is_recommendation_export(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("specificRecommendations"), list)


def _text(fragment: object) -> str:
    if not isinstance(fragment, str) or not fragment.strip():
        return ""
    text = BeautifulSoup(fragment, "lxml").get_text(" ")
    return clean_line(text)


def load_recommendation_export(path: Path, data: dict[str, Any]) -> LoadResult:
    result = LoadResult()
    override = read_sidecar(path)
    for index, record in enumerate(data["specificRecommendations"]):
        where = f"specificRecommendations[{index}]"
        if not isinstance(record, dict):
            result.problems.append(LoadProblem(str(path), f"{where}: not an object; skipped"))
            continue
        title = " ".join(str(record.get("title") or "").split())
        statement = _text(record.get("text"))
        grade = str(record.get("grade") or "").strip().upper()
        if not title or not statement:
            reason = f"{where}: no title or text; skipped"
            result.problems.append(LoadProblem(str(path), reason))
            continue
        topic, _, population = title.partition(" -- ")
        block: dict[str, str] = {"statement": statement}
        if grade in _GRADES:
            block["direction"] = "against" if grade == "D" else "for"
            block["strength"] = "I statement" if grade == "I" else f"Grade {grade}"
            if grade == "I":  # the export prints no certainty beside a letter grade
                block["certainty"] = "insufficient evidence"
        else:  # no readable grade: kept, and shown as ungraded
            block["direction"] = "for"
            block["strength"] = "not graded"
            result.problems.append(
                LoadProblem(
                    str(path), f"{where}: grade {grade!r} is not A, B, C, D or I; kept ungraded"
                )
            )
        block["population"] = population or "as stated in the recommendation"
        block["intervention"] = topic
        if record.get("id") is not None:
            block["id"] = str(record["id"])
        parts = [
            f"# {title}",
            "```recommendation\n"
            + yaml.safe_dump(block, sort_keys=False, allow_unicode=True, width=10_000).rstrip()
            + "\n```",
        ]
        if risk := _text(record.get("riskText")):
            parts.append(f"## Risk assessment\n\n{risk}")
        fields: dict[str, Any] = {
            "id": f"uspstf-{record.get('id', index)}-{slugify(title, 40)}",
            "title": title,
            "organization": USPSTF,
            "doc_type": DocType.guideline,
            "strength_scale": "USPSTF",
        }
        fields.update({k: v for k, v in override.items() if k not in ("id", "title")})
        result.documents.append(Document(**fields, text="\n\n".join(parts), source_path=str(path)))
    if not result.documents:
        raise LoaderError(
            path, "no usable records in specificRecommendations (each needs title and text)"
        )
    return result


def parse_json(path: Path, text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoaderError(
            path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def looks_like_export(text: str) -> bool:
    return bool(re.match(r"\s*\{\s*\"specificRecommendations\"", text))
