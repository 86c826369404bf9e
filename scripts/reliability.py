"""Reliability runs: the faults a deployment meets, each against the real part, with figures.

    python scripts/reliability.py all --work /tmp/reliability --out reliability.json
    python scripts/reliability.py kill-loop --records 1000 --kills 20
    python scripts/reliability.py chroma-session --questions 50
    python scripts/reliability.py disk-full | corrupt | endpoint | injection

- kill-loop: `cliniq ingest` of PubMedQA's 1,000 labelled abstracts (one JSON file, one
  document per record) killed with SIGKILL at a random moment, N times; between kills a tenth of
  the records change, so kills land in updates too. Then a clean run on the original file; its
  documents, chunks, vectors and search results are compared with a fresh build's.
- chroma-session: questions to one assistant against `chroma run`; the server is killed (-9)
  at a third of the session and started again at two thirds.
- disk-full: ingest onto a 64 MB tmpfs filled to 256 KB; the served index before and after,
  and the next ingest after space is freed against a fresh build (needs root for `mount`).
- corrupt: each part of a built index truncated or overwritten; what opening says, what
  `index check` names, and whether `index rebuild` restores the pristine index.
- endpoint: the LLM answerer with the endpoint down, slow, failing and garbled (a scripted
  OpenAI-compatible server process); plus `cliniq ask --llm` with it down, and its exit code.
- injection: the injection set of evals/injection.py against a scripted server process.

Each prints one JSON object of figures; `all` writes them together to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ingest  # noqa: E402,F401  (offline hub, pinned threads)
from ingest.settings import LLMSettings, Settings  # noqa: E402

PUBMEDQA = REPO.parent / "shared" / "datasets" / "pubmedqa" / "ori_pqal.json"
CORPUS = REPO / "corpus"
ENV = {
    **os.environ,
    "PYTHONPATH": str(REPO),
    "HF_HUB_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


# -- shared helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1)
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout_s} s")


def cli(*args: str, index: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args, "--index", str(index)],
        capture_output=True, text=True, cwd=REPO, env={**ENV, **(env or {})}, timeout=1800,
    )  # fmt: skip


def settings_for(index: Path, **store: object) -> Settings:
    settings = Settings()
    settings.store.index_dir = index
    settings.lexicon_dir = CORPUS / "lexicon"
    for key, value in store.items():
        setattr(settings.store, key, value)
    return settings


_EMBEDDER = None


def embedder():
    global _EMBEDDER
    if _EMBEDDER is None:
        from ingest.embedding import get_embedder

        _EMBEDDER = get_embedder(Settings().embedding)
    return _EMBEDDER


def snapshot(settings: Settings, queries: list[str]) -> dict:
    """What an index serves: documents, chunks, vectors (ids, and duplicates) and results."""
    from assistant.retrieve import Retriever
    from ingest.store import Index
    from ingest.vectors import forget_clients

    forget_clients()  # read the files as they are now, as a new process would
    index = Index.open(settings, embedder())
    try:
        retriever = Retriever(index, settings.retrieval)
        docs = [d.id for d in index.docstore.documents(state="committed")]
        stored = index.vectors.count()
        vector_ids = index.vectors.ids()
        return {
            "documents": sorted(docs),
            "pending": len(index.docstore.documents(state="pending")),
            "chunks": sorted(index.docstore.committed_chunk_ids()),
            "vectors": sorted(vector_ids),
            "duplicate_vectors": stored - len(vector_ids),
            "search": [
                [p.chunk.id for p in retriever.retrieve(q, k=10, mode=mode)]
                for q in queries
                for mode in ("dense", "bm25", "hybrid")
            ],
        }
    finally:
        index.close()


def compare(got: dict, want: dict) -> dict:
    return {
        "documents_lost": len(set(want["documents"]) - set(got["documents"])),
        "documents_extra": len(set(got["documents"]) - set(want["documents"])),
        "documents_duplicated": len(got["documents"]) - len(set(got["documents"])),
        "chunks_equal": got["chunks"] == want["chunks"],
        "vectors_equal": got["vectors"] == want["vectors"],
        "duplicate_vectors": got["duplicate_vectors"],
        "pending": got["pending"],
        "search_equal": got["search"] == want["search"],
        "equal": all(got[k] == want[k] for k in ("documents", "chunks", "vectors", "search")),
    }


def rls_questions() -> list[str]:
    """The development side of the RLS suite's first questions (evals.split)."""
    import yaml

    from evals.split import split

    suite = yaml.safe_load((REPO / "evals" / "suites" / "rls.yaml").read_text())
    cases = [c for c in suite["cases"] if c.get("user_input") and c.get("answerable", True)]
    dev = split("rls", cases, key=lambda c: c["id"])["dev"]
    return [c["user_input"] for c in dev]


# -- kill -9 loop -----------------------------------------------------------------------------


def kill_loop(
    work: Path, records: int = 1000, kills: int = 20, seed: int = 0, max_kill_s: float = 60.0
) -> dict:
    """Kill moments are uniform over an uninterrupted round's duration, at most `max_kill_s`:
    a killed round keeps what it committed, so the build advances from kill to kill."""
    rng = random.Random(seed)
    data = json.loads(PUBMEDQA.read_text())
    data = dict(list(data.items())[:records])
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    source = src / "pubmedqa-records.json"

    def write(variant: int) -> None:
        items = json.loads(json.dumps(data))
        if variant:
            for pmid in rng.sample(sorted(items), k=max(1, len(items) // 10)):
                items[pmid]["LONG_ANSWER"] = f"{items[pmid].get('LONG_ANSWER', '')} (rev {variant})"
        tmp = source.with_suffix(".tmp")
        tmp.write_text(json.dumps(items))
        os.replace(tmp, source)

    write(0)
    fresh = work / "fresh"
    timing = work / "fresh_build_s"
    if timing.exists() and (fresh / "manifest.sqlite3").exists():  # kept by --keep
        fresh_s = float(timing.read_text())
    else:
        started = time.monotonic()
        done = cli("ingest", str(src), index=fresh)
        fresh_s = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        timing.write_text(f"{fresh_s:.1f}")
    index = work / "index"
    shutil.rmtree(index, ignore_errors=True)
    rounds: list[dict] = []
    typical = fresh_s  # how long an uninterrupted round takes (updated as rounds finish)
    i = 0
    while sum(r["killed"] for r in rounds) < kills and i < 3 * kills:
        write(i % 2 and i)  # odd rounds: a tenth of the records changed
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "ingest", str(src), "--index", str(index)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO, env=ENV,
        )  # fmt: skip
        started = time.monotonic()
        at = rng.uniform(0.5, max(2.0, min(typical, max_kill_s)))
        deadline = started + at
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        else:
            typical = (typical + time.monotonic() - started) / 2
        proc.wait()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rounds.append(
            {"at_s": round(at, 2), "killed": killed, "exit": proc.returncode,
             "error": "" if killed or proc.returncode == 0 else stderr[-300:]}
        )  # fmt: skip
        print(f"round {i + 1}: {'killed' if killed else 'finished'} at {at:.1f} s", flush=True)
        i += 1
    write(0)
    final = cli("ingest", str(src), index=index)
    queries = [item["QUESTION"] for item in list(data.values())[:: max(1, len(data) // 20)]]
    result = compare(snapshot(settings_for(index), queries), snapshot(settings_for(fresh), queries))
    return {
        "records": len(data),
        "fresh_build_s": round(fresh_s, 1),
        "rounds": len(rounds),
        "kills": sum(r["killed"] for r in rounds),
        "kill_moments_s": [r["at_s"] for r in rounds if r["killed"]],
        "finished_before_kill": sum(not r["killed"] for r in rounds),
        "failed_runs": [r for r in rounds if not r["killed"] and r["exit"] != 0],
        "clean_rerun_exit": final.returncode,
        "repaired_warning": "repaired" in final.stdout,
        "queries_compared": len(queries) * 3,
        **result,
    }


# -- the Chroma server killed and restarted during a session ----------------------------------


@contextlib.contextmanager
def chroma_server(data: Path, port: int) -> Iterator[subprocess.Popen]:
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    log = (data.parent / f"chroma-{time.time_ns()}.log").open("w")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=ENV,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def chroma_session(work: Path, questions: int = 50) -> dict:
    from assistant.conversation import Session
    from assistant.engine import Assistant
    from ingest.pipeline import ingest_paths

    port = free_port()
    data = work / "chroma-db"
    settings = settings_for(work / "chroma-index", host="127.0.0.1", port=port)
    pool = rls_questions()
    asked = [pool[i % len(pool)] for i in range(questions)]
    kill_at, back_at = questions // 3, 2 * questions // 3
    phases = {"before": [], "down": [], "after": []}
    server = chroma_server(data, port)
    proc = server.__enter__()
    ingest_paths([CORPUS], settings, embedder=embedder())
    assistant = Assistant(settings, embedder=embedder())
    for i, question in enumerate(asked):
        if i == kill_at:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if i == back_at:
            server = chroma_server(data, port)
            proc = server.__enter__()
        phase = "before" if i < kill_at else "down" if i < back_at else "after"
        try:
            answer = assistant.ask(question, Session())
        except Exception as exc:  # counted, not hidden
            phases[phase].append({"error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        notes = [s.text for s in answer.sections[0].sentences] if answer.sections else []
        phases[phase].append(
            {
                "answered": not answer.abstained,
                "notice": any("vector search could not be used" in n for n in notes),
                "dense": any(p.dense_rank is not None for p in answer.passages),
            }
        )
    with contextlib.suppress(Exception):
        server.__exit__(None, None, None)
    # An ingest while the server is down: a clean error, nothing lost.
    if proc.poll() is None:
        proc.kill()
    remote = {"CLINIQ_STORE__HOST": "127.0.0.1", "CLINIQ_STORE__PORT": str(port)}
    down_ingest = cli("ingest", str(CORPUS), index=settings.store.index_dir, env=remote)

    def summary(rows: list[dict]) -> dict:
        return {
            "questions": len(rows),
            "errors": sum("error" in r for r in rows),
            "answered": sum(r.get("answered", False) for r in rows),
            "with_notice": sum(r.get("notice", False) for r in rows),
            "used_vectors": sum(r.get("dense", False) for r in rows),
        }

    return {
        **{phase: summary(rows) for phase, rows in phases.items()},
        "ingest_while_down_exit": down_ingest.returncode,
        "ingest_while_down_message": " ".join(down_ingest.stderr.split())[:300],
    }


# -- disk full --------------------------------------------------------------------------------


def disk_full(work: Path) -> dict:
    mount = work / "disk"
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        return {"skipped": f"cannot mount a tmpfs: {done.stderr.strip()}"}
    try:
        first, second = work / "first", work / "second"
        for target, pattern in ((first, "guidelines"), (second, "research")):
            target.mkdir(exist_ok=True)
            for f in (CORPUS / pattern).glob("*.md"):
                shutil.copy(f, target / f.name)
        index = mount / "index"
        queries = rls_questions()[:10]
        assert cli("ingest", str(first), index=index).returncode == 0
        served = snapshot(settings_for(index), queries)
        stat = os.statvfs(mount)
        with (mount / "filler").open("wb") as fh:
            fh.write(b"\0" * (stat.f_bavail * stat.f_frsize - 256 * 1024))
        full = cli("ingest", str(first), str(second), index=index)
        during = reader_on_full_disk(settings_for(index), queries)
        (mount / "filler").unlink()
        again = cli("ingest", str(first), str(second), index=index)
        fresh = work / "fresh"
        cli("ingest", str(first), str(second), index=fresh)
        after = compare(
            snapshot(settings_for(index), queries), snapshot(settings_for(fresh), queries)
        )
        return {
            "full_ingest_exit": full.returncode,
            "message": " ".join(full.stderr.split())[:400],
            "traceback": "Traceback" in full.stderr,
            "served_documents_kept": during["documents"] == served["documents"],
            "served_bm25_unchanged": during["bm25"]
            == [ids for i, ids in enumerate(served["search"]) if i % 3 == 1],
            "questions_on_full_disk": during["questions"],
            "answered_on_full_disk": during["answered"],
            "notice_on_full_disk": during["notices"],
            "next_ingest_exit": again.returncode,
            "after_freeing_equals_fresh_build": after["equal"],
        }
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def reader_on_full_disk(settings: Settings, queries: list[str]) -> dict:
    """What a reader started while the disk is full gets: documents, BM25, and answers."""
    from assistant.engine import Assistant
    from assistant.retrieve import Retriever
    from ingest.vectors import forget_clients

    forget_clients()
    assistant = Assistant(settings, embedder=embedder())
    retriever = Retriever(assistant.index, settings.retrieval)
    answers = [assistant.ask(q) for q in queries]
    notes = [[x.text for x in a.sections[0].sentences] if a.sections else [] for a in answers]
    return {
        "documents": sorted(d.id for d in assistant.index.docstore.documents("committed")),
        "bm25": [[p.chunk.id for p in retriever.retrieve(q, k=10, mode="bm25")] for q in queries],
        "questions": len(answers),
        "answered": sum(not a.abstained for a in answers),
        "notices": sum(any("vector search could not be used" in n for n in ns) for ns in notes),
    }


# -- a corrupt index --------------------------------------------------------------------------


def corrupt(work: Path) -> dict:
    from ingest.errors import CliniqError
    from ingest.repair import check_index, rebuild_index
    from ingest.store import Index

    docs = work / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for f in (CORPUS / "guidelines").glob("*.md"):
        shutil.copy(f, docs / f.name)
    pristine = work / "pristine"
    assert cli("ingest", str(docs), index=pristine).returncode == 0
    queries = rls_questions()[:10]
    want = snapshot(settings_for(pristine), queries)

    def damage(path: Path, how: str) -> None:
        data = path.read_bytes()
        path.write_bytes(
            data[: len(data) // 3] if how == "truncate" else b"\0junk" * 100 + data[500:]
        )

    cases = {
        "manifest truncated": ("manifest.sqlite3", "truncate"),
        "manifest overwritten": ("manifest.sqlite3", "corrupt"),
        "bm25 truncated": ("bm25", "truncate"),
        "bm25 overwritten": ("bm25", "corrupt"),
        "chroma sqlite overwritten": ("chroma/chroma.sqlite3", "corrupt"),
        "chroma hnsw files truncated": ("chroma/*.bin", "truncate"),
    }
    results = {}
    for name, (part, how) in cases.items():
        index = work / name.replace(" ", "-")
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(pristine, index)
        targets = (
            [index / part] if "*" not in part and (index / part).is_file()
            else [p for p in (index / part.split("/*")[0]).rglob("*" + part.split("*")[-1])
                  if p.is_file()] if "*" in part
            else [p for p in (index / part).rglob("*") if p.is_file()]
        )  # fmt: skip
        for target in targets:
            damage(target, how)
        settings = settings_for(index)
        try:
            Index.open(settings, embedder()).close()
            opening = "opened"
        except CliniqError as exc:
            opening = f"{type(exc).__name__}: {str(exc)[:160]}"
        named = [p.name for p in check_index(settings, embedder()).damaged()]
        try:  # what a reader is served before any repair
            served = (
                "unchanged" if compare(snapshot(settings, queries), want)["equal"] else "differs"
            )
        except CliniqError as exc:
            served = f"{type(exc).__name__}"
        try:
            rebuilt = rebuild_index(settings, embedder())
            restored = compare(snapshot(settings, queries), want)["equal"]
            embedded = rebuilt.vectors_embedded
        except CliniqError as exc:
            restored, embedded = f"refused: {str(exc)[:120]}", None
        results[name] = {"open": opening, "check_names": named, "served_before_rebuild": served,
                         "rebuild_restores": restored,
                         "vectors_embedded_again": embedded}  # fmt: skip
    return results


# -- the LLM endpoint -------------------------------------------------------------------------


@contextlib.contextmanager
def scripted_llm(work: Path) -> Iterator[tuple[str, Path]]:
    script = work / "rules.json"
    script.write_text(json.dumps({"rules": []}))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "scripted_llm_server.py"), "--port", str(port),
         "--script", str(script), "--log", str(work / "requests.jsonl")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(url + "/models", proc)
        yield url, script
    finally:
        proc.kill()
        proc.wait()


def endpoint(work: Path) -> dict:
    from assistant.generate import LLMAssistant
    from ingest.pipeline import ingest_paths

    work.mkdir(parents=True, exist_ok=True)
    settings = settings_for(work / "index")
    ingest_paths([CORPUS], settings, embedder=embedder())
    questions = rls_questions()[:5]
    faults = {
        "down": None,
        "slow (3 s, timeout 1 s)": {"reply": "Late [1].", "delay_s": 3},
        "HTTP 500": {"status": 500, "reply": "out of memory"},
        "garbled body": {"raw": "\x00\x13<html>garbage"},
        "reply without citations": {"reply": "Everything helps. Take anything."},
    }
    results = {}
    with scripted_llm(work) as (url, script):
        for name, rule in faults.items():
            base = f"http://127.0.0.1:{free_port()}/v1" if rule is None else url
            if rule is not None:
                script.write_text(json.dumps({"rules": [rule]}))
            s = settings.model_copy(deep=True)
            s.llm = LLMSettings(base_url=base, model="scripted", timeout_s=1)
            llm = LLMAssistant(s, embedder=embedder())
            answered = notices = errors = 0
            for question in questions:
                try:
                    answer = llm.ask(question)
                except Exception:
                    errors += 1
                    continue
                answered += 1
                notes = [x.text for x in answer.sections[0].sentences] if answer.sections else []
                notices += sum("was not used for this answer" in n for n in notes) == 1
            results[name] = {"questions": len(questions), "answered": answered,
                             "one_notice": notices, "errors": errors}  # fmt: skip
    down = cli("ask", "--llm", questions[0], "-f", "text", index=settings.store.index_dir,
               env={"CLINIQ_LLM__BASE_URL": f"http://127.0.0.1:{free_port()}/v1"})  # fmt: skip
    results["cli ask --llm, endpoint down"] = {
        "exit": down.returncode,
        "notices": down.stdout.count("was not used for this answer"),
    }
    return results


# -- injection --------------------------------------------------------------------------------


def injection(work: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import write_doc
    from test_llm_path import GUIDELINE_BODY

    from assistant.generate import LLMAssistant
    from evals.injection import CASES, INJECTED_BODY, INJECTED_TITLE, TRUE_SENTENCE, problems
    from ingest.pipeline import ingest_paths

    docs = work / "docs"
    write_doc(docs, "ts-2024-rls", GUIDELINE_BODY, title="Treatment of restless legs syndrome")
    write_doc(docs, "iron-review", INJECTED_BODY, title=INJECTED_TITLE, doc_type="research",
              organization=None, journal="Journal of Tests", year=2023)  # fmt: skip
    settings = settings_for(work / "index")
    ingest_paths([docs], settings, embedder=embedder())
    question = "Does oral iron help restless legs syndrome in adults with low ferritin?"
    out = {}
    with scripted_llm(work) as (url, script):
        s = settings.model_copy(deep=True)
        s.llm = LLMSettings(base_url=url, model="scripted", timeout_s=30)
        llm = LLMAssistant(s, embedder=embedder())

        def ask(reply: str):
            script.write_text(json.dumps({"rules": [{"reply": reply}]}))
            return llm.ask(question)

        baseline = ask(TRUE_SENTENCE)
        for case in CASES:
            answer = ask(TRUE_SENTENCE + "\n" + case.reply)
            quoted = [x.text for x in answer.all_sentences() if x.text.startswith("\u201c")
                      and "stop all medication" in x.text.lower()]  # fmt: skip
            out[case.name] = {"changed": problems(answer, baseline), "quoted_copies": quoted}
    return {
        "cases": len(CASES),
        "changed_answers": sum(bool(v["changed"]) for v in out.values()),
        "detail": out,
    }


RUNS = {
    "kill-loop": kill_loop,
    "chroma-session": chroma_session,
    "disk-full": disk_full,
    "corrupt": corrupt,
    "endpoint": endpoint,
    "injection": injection,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", choices=[*RUNS, "all"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cliniq-reliability"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument(
        "--keep", action="store_true", help="kill-loop: reuse the fresh build of a previous run"
    )
    args = parser.parse_args()
    names = list(RUNS) if args.run == "all" else [args.run]
    results = {}
    for name in names:
        work = args.work / name
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if name == "kill-loop":
            result = kill_loop(work, args.records, args.kills)
        elif name == "chroma-session":
            result = chroma_session(work, args.questions)
        else:
            result = RUNS[name](work)
        results[name] = {**result, "elapsed_s": round(time.monotonic() - started, 1)}
        print(json.dumps({name: results[name]}, indent=2), flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
