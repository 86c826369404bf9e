"""What every step of an answer reads: the index, its retriever, the model, the lexicon and the
corpus profile, opened once and shared by both answerers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assistant.lexicon import Lexicon
from assistant.profile import CorpusProfile
from assistant.retrieve import Retriever
from assistant.types import NormalizedQuery
from ingest.embedding import Embedder
from ingest.settings import AnswerSettings
from ingest.store import Index


@dataclass
class Sources:
    index: Index
    retriever: Retriever
    embedder: Embedder
    lexicon: Lexicon | None
    profile: CorpusProfile
    options: AnswerSettings
    _profile_generation: int = field(default=-1, repr=False)

    def normalize(self, text: str) -> NormalizedQuery | None:
        if self.lexicon is None:
            return None
        from assistant.normalize import normalize_question

        return normalize_question(text, self.lexicon, self.index.lexical().has_term)

    def refresh(self) -> None:
        """Re-read the profile when an ingest changed the index since it was read."""
        generation = self.index.docstore.generation
        if generation != self._profile_generation:
            if self._profile_generation != -1:
                # What is served, and the filtered searches' vectors, changed with it.
                self.index.invalidate()
                self.retriever.index.invalidate()
            self.profile = CorpusProfile.from_index(self.index, self.lexicon)
            self._profile_generation = generation


def load_lexicon(directory: Path) -> Lexicon | None:
    """The lexicon if present; the assistant still answers (without normalization) if not."""
    if not Path(directory).is_dir():
        return None
    return Lexicon.cached(Path(directory))
