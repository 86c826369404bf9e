"""Markdown documents: the corpus format (strict YAML front matter) and plain Markdown.

The front matter schema is in corpus/README.md. It is checked strictly because a typo such as
`stauts:` would otherwise drop a document's status without anyone noticing.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ingest.errors import LoaderError
from ingest.loaders._common import (
    LoadResult,
    describe_yaml_error,
    did_you_mean,
    load_yaml,
    path_document_id,
    short_title,
    title_from_stem,
)
from ingest.types import DocStatus, DocType, Document

FRONT_MATTER_KEYS: frozenset[str] = frozenset(
    {
        "id",
        "title",
        "organization",
        "journal",
        "authors",
        "year",
        "publication_date",
        "citation",
        "doi",
        "pmid",
        "url",
        "doc_type",
        "status",
        "superseded_by",
        "strength_scale",
        "populations",
        "tags",
    }
)
REQUIRED_KEYS = ("id", "title", "year", "doc_type", "status")
_LIST_KEYS = ("authors", "populations", "tags")
_ENUM_KEYS: dict[str, type[StrEnum]] = {"doc_type": DocType, "status": DocStatus}
_ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_FENCE_RE = re.compile(r"---[ \t]*")
_END_FENCE_RE = re.compile(r"(?:---|\.\.\.)[ \t]*")
_H1_RE = re.compile(r"#[ \t]++(.*\S)[ \t]*")


def load_markdown(path: Path, text: str) -> LoadResult:
    lines = text.split("\n")
    if not _FENCE_RE.fullmatch(lines[0]):
        return LoadResult([_plain_markdown(path, text)])
    end = next((i for i in range(1, len(lines)) if _END_FENCE_RE.fullmatch(lines[i])), None)
    if end is None:
        raise LoaderError(
            path, "front matter opened with '---' on line 1 is never closed; add a '---' line"
        )
    meta = _parse_front_matter(path, "\n".join(lines[1:end]), lines[1:end])
    body = "\n".join(lines[end + 1 :]).strip("\n")
    if not body.strip():
        raise LoaderError(path, "no body text after the front matter; add the document's content")
    try:
        doc = Document(**meta, text=body, source_path=str(path))
    except ValidationError as exc:
        raise LoaderError(path, f"front matter: {_describe_validation(exc)}") from None
    return LoadResult([doc])


def _plain_markdown(path: Path, text: str) -> Document:
    title = None
    in_fence = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and (m := _H1_RE.fullmatch(line)):
            title = short_title(m.group(1).rstrip("# \t") or m.group(1))
            break
    return Document(
        id=path_document_id(path),
        title=title or title_from_stem(path),
        doc_type=DocType.research,
        text=text.strip("\n"),
        source_path=str(path),
    )


def _parse_front_matter(path: Path, yaml_text: str, lines: list[str]) -> dict[str, Any]:
    try:
        data = load_yaml(yaml_text)
    except yaml.YAMLError as exc:
        raise LoaderError(
            path, f"front matter is not valid YAML, {describe_yaml_error(exc, first_line=2)}"
        ) from None
    if not isinstance(data, dict):
        raise LoaderError(path, "front matter must be a YAML mapping of `key: value` lines")

    def where(key: str) -> str:
        pattern = re.compile(rf"\s*['\"]?{re.escape(str(key))}['\"]?\s*:")
        line = next((i for i, text in enumerate(lines) if pattern.match(text)), None)
        return f" (line {line + 2})" if line is not None else ""

    for key in data:
        if key not in FRONT_MATTER_KEYS:
            raise LoaderError(
                path,
                f"front matter: unknown key {key!r}{where(key)}"
                f"{did_you_mean(str(key), FRONT_MATTER_KEYS)}; "
                f"valid keys: {', '.join(sorted(FRONT_MATTER_KEYS))}",
            )
    meta = {key: value for key, value in data.items() if value is not None and value != ""}
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise LoaderError(
            path,
            f"front matter: missing required field(s): {', '.join(missing)} (see corpus/README.md)",
        )
    if "organization" not in meta and "journal" not in meta:
        raise LoaderError(path, "front matter: set at least one of `organization` or `journal`")
    if not any(key in meta for key in ("doi", "pmid", "url")):
        raise LoaderError(path, "front matter: set at least one of `doi`, `pmid` or `url`")

    for key, value in list(meta.items()):
        meta[key] = _coerce(path, key, value, where(key))
    if not _ID_RE.fullmatch(meta["id"]):
        raise LoaderError(
            path,
            f"front matter: id {meta['id']!r}{where('id')} must be lowercase letters, digits and "
            "single hyphens (e.g. aasm-2025-rls-plmd)",
        )
    if meta["status"] == DocStatus.superseded.value and "superseded_by" not in meta:
        raise LoaderError(
            path,
            "front matter: status is 'superseded' but superseded_by is missing; name the "
            "id of the newer document",
        )
    return meta


def _coerce(path: Path, key: str, value: Any, where: str) -> Any:
    """Normalise YAML's guesses (pmid as int, a single author as a string) to Document's types."""
    if key in _LIST_KEYS:
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, dict | list) for item in items):
            raise LoaderError(path, f"front matter: {key}{where} must be a list of plain values")
        return [str(item).strip() for item in items if str(item).strip()]
    if key in _ENUM_KEYS:
        allowed = [member.value for member in _ENUM_KEYS[key]]
        if str(value) not in allowed:
            raise LoaderError(
                path,
                f"front matter: {key}: {value!r}{where} is not one of {' | '.join(allowed)}"
                f"{did_you_mean(str(value), allowed)}",
            )
        return str(value)
    if key == "year":
        if isinstance(value, bool) or not re.fullmatch(r"\d{4}", str(value).strip()):
            raise LoaderError(
                path, f"front matter: year{where} must be a 4-digit year, got {value!r}"
            )
        return int(str(value).strip())
    if key == "publication_date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            raise LoaderError(
                path,
                f"front matter: publication_date{where} must be an ISO date (YYYY-MM-DD), "
                f"got {value!r}",
            ) from None
    if isinstance(value, dict | list):
        raise LoaderError(path, f"front matter: {key}{where} must be a single value, not a list")
    return str(value).strip()


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(loc) for loc in error["loc"]) or "document"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)
