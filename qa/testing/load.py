"""Many gradio_client clients asking the web chat's `/ask` at once: throughput, latency and errors.

`python -m bench.load` runs it against a server it starts (50 clients x 20 questions by default);
tests/test_hardening_web.py runs 10 x 5 against the test server.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

QUESTIONS = (
    "What did Russia deploy to the Kurils?",
    "Why have Russia and Japan never signed a peace treaty?",
    "What did Abe propose to Putin?",
    "Why does Russia not want to return the islands?",
    "What role does China play?",
    "How did Japan respond to the deployment of missiles?",
    "What is the Northern Territories dispute about?",
    "Which islands are claimed by Japan?",
)


@dataclass
class LoadResult:
    """The figures of one load run, as the clients saw them (queueing included)."""

    clients: int
    questions_per_client: int
    questions: int = 0
    errors: int = 0
    seconds: float = 0.0
    throughput_qps: float = 0.0
    latency_p50_s: float = 0.0
    latency_p95_s: float = 0.0
    latency_max_s: float = 0.0
    error_samples: list[str] = field(default_factory=list)
    server: dict = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"{self.clients} clients x {self.questions_per_client} questions = {self.questions} questions "
            f"in {self.seconds:.1f} s: {self.errors} errors",
            f"throughput {self.throughput_qps:.1f} questions/s; latency p50 {self.latency_p50_s * 1000:.0f} ms, "
            f"p95 {self.latency_p95_s * 1000:.0f} ms, max {self.latency_max_s * 1000:.0f} ms",
        ]
        if self.server:
            lines.append("server: " + ", ".join(f"{k}={v}" for k, v in self.server.items()))
        lines += [f"error: {sample}" for sample in self.error_samples]
        return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def run_load(url: str, clients: int = 50, questions: int = 20, k: int = 5, mode: str = "hybrid") -> LoadResult:
    """`clients` gradio_client clients, started together, each asking `questions` questions in turn."""
    from gradio_client import Client

    result = LoadResult(clients, questions)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def client_run(index: int) -> None:
        try:
            client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        except Exception as exc:
            with lock:
                errors.extend([f"client {index} could not connect: {type(exc).__name__}: {exc}"] * questions)
            ready.wait()
            return
        ready.wait()
        for n in range(questions):
            question = QUESTIONS[(index + n) % len(QUESTIONS)]
            started = time.perf_counter()
            try:
                answer = client.predict(question, k, mode, api_name="/ask")
                problem = _check(answer, question)
            except Exception as exc:
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if problem:
                    errors.append(f"client {index}, question {n}: {problem}")

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client_run, i) for i in range(clients)]
        ready.wait()  # every client connected: the clock starts now
        started = time.perf_counter()
        for future in futures:
            future.result()
        result.seconds = time.perf_counter() - started
    result.questions = clients * questions
    result.errors = len(errors)
    result.error_samples = errors[:5]
    if latencies:
        result.throughput_qps = len(latencies) / result.seconds
        result.latency_p50_s = statistics.median(latencies)
        result.latency_p95_s = percentile(latencies, 0.95)
        result.latency_max_s = max(latencies)
    return result


def _check(answer: object, question: str) -> str:
    """'' if `answer` is the JSON of `qa ask --json` for `question`, else what is wrong."""
    if not isinstance(answer, dict):
        return f"not a JSON object: {str(answer)[:120]}"
    missing = {"question", "answer", "passages", "mode", "searched_query", "notes"} - set(answer)
    if missing:
        return f"answer without {', '.join(sorted(missing))}"
    if answer["question"] != question:
        return f"answer to another question: {answer['question'][:80]!r}"
    return ""
