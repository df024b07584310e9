"""Queries run a few at once, each answer handed over as it comes, abandoned on Ctrl-C.

On daemon threads, not an executor's: an executor waits at exit for the
queries in flight, which a hung server holds for minutes, so Ctrl-C (or a
failed query) would not end the report. Here the caller stops at once; the
queries still in flight are abandoned.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

__all__ = ["each_answer"]

Q = TypeVar("Q")
A = TypeVar("A")


def each_answer(
    ask: Callable[[Q], A], queries: Sequence[Q], concurrency: int, *, name: str = "query"
) -> Iterator[tuple[Q, A]]:
    """Each query with its answer, in the order they come, `concurrency` in flight at once.

    A query that raises raises here, and the rest are not started.
    """
    todo: queue.SimpleQueue[Q] = queue.SimpleQueue()
    for q in queries:
        todo.put(q)
    answers: queue.SimpleQueue[tuple[Q, A | BaseException]] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                q = todo.get_nowait()
            except queue.Empty:
                return
            try:
                answers.put((q, ask(q)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
                answers.put((q, exc))

    for n in range(min(concurrency, len(queries))):
        threading.Thread(target=work, name=f"{name}-{n}", daemon=True).start()
    try:
        for _ in queries:
            q, answer = answers.get()
            if isinstance(answer, BaseException):
                raise answer
            yield q, answer
    finally:
        stop.set()
