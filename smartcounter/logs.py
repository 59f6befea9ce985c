"""Logging: one JSON object per line (time, level, logger, message, node, session and
any exception), or plain text for a person at a terminal."""

from __future__ import annotations

import json
import logging
import time

from sessions.log_context import session_id_var


class JsonFormatter(logging.Formatter):
    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "node": self.node_id,
        }
        session_id = session_id_var.get()
        if session_id:
            entry["session_id"] = session_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class Throttle(logging.Filter):
    """Lets a message through once per ``interval_s`` (by its format string), saying how
    many were held back: asyncio logs "socket.accept() out of system resource" for every
    failed accept, hundreds of thousands a minute when the open-files limit is reached."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        last, held = self._last.get(key, (0.0, 0))
        if record.created - last < self.interval_s:
            self._last[key] = (last, held + 1)
            return False
        self._last[key] = (record.created, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last {self.interval_s:g} s)"
        return True


def configure_logging(log_format: str, node_id: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(node_id))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, Throttle) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(Throttle())
