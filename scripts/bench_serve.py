"""`cliniq serve` under load: N questions from C clients at once vs one client, in the same run.

    .venv/bin/python scripts/bench_serve.py [--workers 1 2] [--questions 200] [--clients 8]
        [--rounds 2] [--index DIR] [--json out.json]

For each worker count it starts `cliniq serve` on a free loopback port over the bundled corpus's
index (built with `cliniq ingest corpus/` into $CLINIQ_BENCH_DIR/serve-index when missing), sends
one warm-up pass, then alternates rounds of (a) the questions one at a time from one client and
(b) the same questions from C clients at once, each client a thread with its own HTTP connection
calling POST /v1/chat/completions (model `cliniq`). The questions are the bundled RLS suite's
cases (evals/suites/rls.yaml), follow-up turns sent as earlier messages, cycled to N. Reported:
p50/p95 latency and errors per mode (pooled over rounds), p95(concurrent) / p95(single), and the
answers' own time inside the server (`timings_ms.total_ms`), which excludes waiting for a turn, and
the latency of GET /healthz sent every 0.25 s meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_WORK, ROOT, percentile

SUITE = ROOT / "evals" / "suites" / "rls.yaml"


def requests_from_suite(n: int, max_chars: int = 1000) -> list[list[dict]]:
    """One chat request per suite case (its follow-up turns as later user messages), cycled.
    A case whose question is over the server's size limit is left out: the server refuses it
    by design (HTTP 400), which would count as an error here."""
    cases = yaml.safe_load(SUITE.read_text())["cases"]
    conversations = []
    for case in cases:
        if len(case["user_input"]) > max_chars:
            continue
        messages = [{"role": "user", "content": case["user_input"]}]
        for turn in case.get("turns") or []:
            text = turn["user_input"] if isinstance(turn, dict) else turn
            messages += [
                {"role": "assistant", "content": "(earlier answer)"},
                {"role": "user", "content": text},
            ]
        conversations.append(messages)
    return [conversations[i % len(conversations)] for i in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_index(index: Path) -> None:
    if (index / "manifest.sqlite3").exists():
        return
    env = {**os.environ, "CLINIQ_STORE__INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ingest", str(ROOT / "corpus"), "--strict"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def start_server(index: Path, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLINIQ_")},
        "CLINIQ_STORE__INDEX_DIR": str(index),
        "CLINIQ_LEXICON_DIR": str(ROOT / "corpus" / "lexicon"),
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"cliniq serve exited: see {log}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit(f"cliniq serve did not start in 300 s: see {log}")


def one(
    client: httpx.Client, url: str, messages: list[dict]
) -> tuple[float, float | None, str | None]:
    """Client-side latency, the answer's own time inside the server (total_ms), and the error."""
    t0 = time.perf_counter()
    answer_ms = None
    try:
        r = client.post(
            url + "/v1/chat/completions",
            json={"model": "cliniq", "messages": messages},
            timeout=300,
        )
        error = None if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:200]}"
        if error is None:
            answer = r.json().get("cliniq")
            if answer is None:
                error = "no structured answer in the response"
            else:
                answer_ms = answer["timings_ms"]["total_ms"]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return (time.perf_counter() - t0) * 1000, answer_ms, error


def run_clients(url: str, batch: list[list[dict]], clients: int) -> dict:
    """`clients` threads take the next question from a shared queue until none is left."""
    latencies: list[float] = []
    answer_times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(len(batch)))

    def worker() -> None:
        with httpx.Client() as client:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                ms, answer_ms, error = one(client, url, batch[i])
                with lock:
                    latencies.append(ms)
                    if answer_ms is not None:
                        answer_times.append(answer_ms)
                    if error:
                        errors.append(error)

    health_ms: list[float] = []
    done = threading.Event()

    def health_probe() -> None:
        """GET /healthz every 0.25 s while the clients run: it must not wait for answers."""
        with httpx.Client() as client:
            while not done.wait(0.25):
                t0 = time.perf_counter()
                try:
                    client.get(url + "/healthz", timeout=60).raise_for_status()
                except httpx.HTTPError as exc:
                    errors.append(f"healthz: {exc}")
                health_ms.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    probe = threading.Thread(target=health_probe)
    probe.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    done.set()
    probe.join()
    return {
        "latencies_ms": latencies,
        "answer_ms": answer_times,
        "health_ms": health_ms,
        "errors": errors,
        "wall_s": wall,
    }


def summary(runs: list[dict]) -> dict:
    lat = [x for r in runs for x in r["latencies_ms"]]
    errors = [e for r in runs for e in r["errors"]]
    wall = sum(r["wall_s"] for r in runs)
    return {
        "requests": len(lat),
        "errors": len(errors),
        "error_samples": errors[:3],
        "p50_ms": round(percentile(lat, 0.5), 1),
        "p95_ms": round(percentile(lat, 0.95), 1),
        "mean_ms": round(statistics.fmean(lat), 1),
        # The answer's own time in the server; the rest of the latency is waiting and HTTP.
        "answer_p50_ms": round(percentile([x for r in runs for x in r["answer_ms"]], 0.5), 1),
        "answer_p95_ms": round(percentile([x for r in runs for x in r["answer_ms"]], 0.95), 1),
        "healthz_p95_ms": round(percentile([x for r in runs for x in r["health_ms"]], 0.95), 1),
        "healthz_max_ms": round(max((x for r in runs for x in r["health_ms"]), default=0), 1),
        "throughput_rps": round(len(lat) / wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--index", type=Path, default=DEFAULT_WORK / "serve-index")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    ensure_index(args.index)
    batch = requests_from_suite(args.questions)
    load = os.getloadavg()
    results: dict = {
        "questions": args.questions,
        "clients": args.clients,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in load],
        "by_workers": {},
    }
    for workers in args.workers:
        log = args.index.parent / f"serve-{workers}w.log"
        proc, url = start_server(args.index, workers, log)
        try:
            run_clients(url, batch[: max(args.clients * 2, 20)], args.clients)  # warm-up
            single, concurrent = [], []
            for _ in range(args.rounds):  # alternate, so drifting load hits both modes
                single.append(run_clients(url, batch, 1))
                concurrent.append(run_clients(url, batch, args.clients))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        s, c = summary(single), summary(concurrent)
        ratio = round(c["p95_ms"] / s["p95_ms"], 2)
        results["by_workers"][workers] = {"single": s, "concurrent": c, "p95_ratio": ratio}
        print(
            f"workers {workers}: single p50 {s['p50_ms']} ms p95 {s['p95_ms']} ms "
            f"({s['errors']} errors, {s['throughput_rps']}/s) | {args.clients} clients p50 "
            f"{c['p50_ms']} ms p95 {c['p95_ms']} ms ({c['errors']} errors, "
            f"{c['throughput_rps']}/s) | p95 ratio {ratio}x | answer time in the server p95: "
            f"single {s['answer_p95_ms']} ms, concurrent {c['answer_p95_ms']} ms | /healthz "
            f"during {args.clients} clients p95 {c['healthz_p95_ms']} ms, "
            f"max {c['healthz_max_ms']} ms",
            flush=True,
        )
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
