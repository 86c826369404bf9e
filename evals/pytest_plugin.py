"""pytest plugin: write ordinary tests over an eval suite.

```python
import pytest

@pytest.mark.cliniq_suite("evals/suites/rls.yaml", tags=["esrd"])
def test_case_meets_its_expectations(cliniq_case, cliniq_eval):
    result = cliniq_eval(cliniq_case)
    assert result.passed, result.explain()
    assert result.score("faithfulness") >= 0.9
```

``cliniq_case`` is parametrized over the suite's cases (test ids are the case ids).
``cliniq_eval(case)`` answers the case with ``cliniq_system`` (the offline assistant over an index
built once per session from ``--cliniq-corpus``, or ``--cliniq-index``), judges every sentence
with ``cliniq_judge`` (``--cliniq-judge``, default: the assistant's own), and returns the scored
``CaseResult``. Override ``cliniq_system`` or ``cliniq_judge`` in a conftest to evaluate another
system (e.g. ``RecordedSystem.from_file(...)``) or judge. ``cliniq_suite(path)`` loads a suite.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from evals.runner import CaseResult
    from evals.suite import Case, Suite

MARKER = "cliniq_suite"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cliniq-eval", "cliniq eval suites")
    group.addoption(
        "--cliniq-judge",
        default="default",
        help="support judge that scores claims (default: the assistant's default judge)",
    )
    group.addoption(
        "--cliniq-assistant-judge",
        default="default",
        help="judge the assistant verifies its own sentences with (default: its own)",
    )
    group.addoption(
        "--cliniq-index",
        default=None,
        help="use this existing index instead of building one from --cliniq-corpus",
    )
    group.addoption(
        "--cliniq-corpus", default="corpus", help="corpus indexed once per session (corpus/)"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(path, limit=None, tags=()): parametrize the `cliniq_case` argument over the "
        "cases of an eval suite (path relative to the rootdir)",
    )


def _resolve(config: pytest.Config, path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else Path(config.rootpath) / path


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cliniq_case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None or not marker.args:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid} uses `cliniq_case` without "
            f'@pytest.mark.{MARKER}("path/to/suite.yaml")'
        )
    from evals.suite import load_suite

    suite = load_suite(_resolve(metafunc.config, marker.args[0]))
    cases = suite.select(marker.kwargs.get("limit"), marker.kwargs.get("tags", ()))
    metafunc.parametrize("cliniq_case", cases, ids=[c.id for c in cases])


@pytest.fixture(scope="session")
def cliniq_suite(pytestconfig: pytest.Config) -> Callable[[str | Path], Suite]:
    """``cliniq_suite(path)`` -> the validated suite (cached per session)."""
    from evals.suite import load_suite

    cache: dict[Path, Suite] = {}

    def load(path: str | Path) -> Suite:
        resolved = _resolve(pytestconfig, path)
        if resolved not in cache:
            cache[resolved] = load_suite(resolved)
        return cache[resolved]

    return load


@pytest.fixture(scope="session")
def cliniq_system(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The offline assistant over an index of the corpus, built once per session."""
    from evals.runner import build_cliniq
    from ingest.settings import Settings

    settings = Settings()
    index = pytestconfig.getoption("cliniq_index")
    corpus = _resolve(pytestconfig, pytestconfig.getoption("cliniq_corpus"))
    settings.store.index_dir = Path(index) if index else tmp_path_factory.mktemp("cliniq-eval")
    lexicon = _resolve(pytestconfig, "corpus/lexicon")
    if lexicon.is_dir():
        settings.lexicon_dir = lexicon
    return build_cliniq(
        settings,
        None if index else corpus,
        verifier_judge=pytestconfig.getoption("cliniq_assistant_judge"),
        ingest=not index,
    )


@pytest.fixture(scope="session")
def cliniq_judge(pytestconfig: pytest.Config, cliniq_system: Any) -> Any:
    """The support judge that scores claims, sharing the system's model when it has one."""
    from evals.runner import resolve_judge

    assistant = getattr(cliniq_system, "assistant", None)
    return resolve_judge(
        pytestconfig.getoption("cliniq_judge"),
        getattr(assistant, "settings", None),
        getattr(assistant, "embedder", None),
    )


@pytest.fixture
def cliniq_eval(cliniq_system: Any, cliniq_judge: Any) -> Callable[[Case], CaseResult]:
    """``cliniq_eval(case)`` -> the case answered, judged and scored (a ``CaseResult``)."""
    from evals.metrics import ClaimJudging, default_metrics
    from evals.runner import score_case

    judging = ClaimJudging(cliniq_judge)

    def evaluate(case: Case) -> CaseResult:
        import time

        started = time.perf_counter()
        outcomes = cliniq_system.answer_case(case)
        return score_case(case, outcomes, judging, default_metrics(), time.perf_counter() - started)

    return evaluate
