"""A PDF worker's process (started by :mod:`document_share.sandbox`): one job at a time
from its socket, each under a fresh CPU budget, inside the address-space limit, at a low
priority. Its own module: it imports the page code, which imports the sandbox."""

from __future__ import annotations

import math
import os
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from document_share.sandbox import (
    FAILED,
    LAST,
    OK,
    READY,
    Connection,
    receive_message,
    send_message,
)


def serve(conn: Connection, memory_bytes: int, cpu_s: int) -> None:
    """The worker's loop: one job at a time, each under a fresh CPU budget."""
    os.nice(10)  # untrusted work yields the CPU to the calls the server is carrying
    from document_share import pages  # loaded at the low priority

    jobs: dict[str, Callable[..., Any]] = {  # paths cross the channel as text
        "count": lambda path: pages.count_pdf_pages(Path(path)),
        "render": lambda path, *rest: pages.render_pdf_page_png(Path(path), *rest),
    }
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    send_message(conn, {"status": READY})
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    while True:
        try:
            request, _ = receive_message(conn)
        except (EOFError, OSError, ValueError):
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # Whole seconds only: rounded up, the job has at least ``cpu_s`` of its own.
        budget = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_s
        # Only the soft limit (SIGXCPU ends the process): a hard one could not be raised
        # again for the next job without privileges.
        resource.setrlimit(resource.RLIMIT_CPU, (budget, hard_cpu))
        try:
            value = jobs[request["job"]](*request["args"])
        except MemoryError:
            # The heap may be left in pieces: this worker ends, a fresh one follows.
            send_message(conn, {"status": LAST,
                         "reason": "the document needs more memory to draw than is allowed"})
            return
        except pages.PageError as exc:
            send_message(conn, {"status": FAILED, "reason": str(exc)})
        except Exception as exc:  # whatever PDFium makes of a hostile file
            send_message(conn, {"status": FAILED, "reason": f"the document cannot be read: {exc}"})
        else:
            if isinstance(value, bytes):
                send_message(conn, {"status": OK}, value)
            else:
                send_message(conn, {"status": OK, "value": value})


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]))
