"""One side of a benchmark case, in its own process (started by ``bench.runner``).

``python -m bench.child JOB_JSON``: ``JOB_JSON`` names the ``role`` (``bulk-server``,
``bulk-client``, ``rr-server``, ``rr-client``, ``scale-server``, ``scale-clients``), the
``peer`` and its parameters. The child reports JSON lines on its real stdout (``ready`` with
the port, then ``result`` or ``error``); anything else printed goes to stderr. It exits by itself
when its stdin closes (the parent is gone), and its whole run is bounded by ``timeout``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from bench import peers, workloads
from bench.loopback import _Profiler, _watch_parent

__all__ = ["main"]

Emit = Callable[[dict[str, Any]], None]

try:
    import uvloop
except ImportError:  # pragma: no cover - a dependency on CPython/Linux
    uvloop = None  # type: ignore[assignment]


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop with a nanosecond ``time()``, or None for asyncio's default loop.

    uvloop's own ``loop.time()`` ticks in whole milliseconds (libuv's ``uv_now``), so on a
    sub-millisecond path two events in one tick see the same time and RTT samples of 0.0 s;
    rudp's model-based controller then divides by zero (``cc_model.ModelBased.on_ack``). Every
    peer runs on this loop, so all of them see the same clock. ``call_at`` still works:
    uvloop turns it into ``call_later(when - self.time())``.
    """
    if name != "uvloop" or uvloop is None:
        return None

    class PreciseUvloop(uvloop.Loop):  # type: ignore[misc, name-defined]
        def time(self) -> float:
            return time.monotonic()

    return PreciseUvloop


async def _serve_one(job: dict[str, Any], emit: Emit, work: Any) -> None:
    """Listen, report the port, run ``work(stream)`` on the first connection, report it."""
    spec = peers.parse_peer(job["peer"])
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict[str, Any]] = loop.create_future()
    profiler = _Profiler(job.get("profile_out"))

    async def handler(stream: peers.Stream) -> None:
        if done.done():
            await stream.close()
            return
        try:
            profiler.start()
            result = await work(stream)
            profiler.stop()
            if not done.done():
                done.set_result(result)
        except Exception as exc:  # reported by the parent as this side's failure
            if not done.done():
                done.set_exception(exc)
        finally:
            await stream.close()

    server = await peers.start_server(spec, job["host"], int(job.get("port", 0)), handler)
    try:
        emit({"event": "ready", "port": server.port, "pid": os.getpid()})
        result = await done
        emit({"event": "result", **result})
        await asyncio.sleep(0.2)  # let the close's last packets go out
    finally:
        await server.close()


async def _connect_and(job: dict[str, Any], emit: Emit, work: Any) -> None:
    spec = peers.parse_peer(job["peer"])
    stream = await asyncio.wait_for(peers.connect(spec, job["host"], int(job["port"])), 30.0)
    profiler = _Profiler(job.get("profile_out"))
    try:
        profiler.start()
        result = await work(stream)
        profiler.stop()
        emit({"event": "result", **result})
    finally:
        await stream.close()


async def _run(job: dict[str, Any], emit: Emit) -> None:
    role = job["role"]
    if role == "bulk-server":
        await _serve_one(job, emit, workloads.bulk_receive)
    elif role == "bulk-client":
        total, cap = int(job["bytes"]), float(job["max_seconds"])
        await _connect_and(job, emit, lambda s: workloads.bulk_send(s, total, cap))
    elif role == "rr-server":
        size = int(job["size"])
        await _serve_one(job, emit, lambda s: workloads.rr_server(s, size))
    elif role == "rr-client":
        rounds, size, warmup = int(job["rounds"]), int(job["size"]), int(job.get("warmup", 20))
        await _connect_and(job, emit, lambda s: workloads.rr_client(s, rounds, size, warmup))
    elif role in ("scale-server", "scale-clients"):
        from bench import scale

        runner: Callable[[dict[str, Any], Emit], Coroutine[Any, Any, None]]
        runner = scale.server if role == "scale-server" else scale.clients
        await runner(job, emit)
    else:
        raise ValueError(f"unknown role {role!r}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job: dict[str, Any] = json.loads(args[0])
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    threading.Thread(target=_watch_parent, args=(sys.stdin,), daemon=True).start()

    def emit(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    factory = _loop_factory(job.get("loop", "uvloop"))
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(asyncio.wait_for(_run(job, emit), float(job.get("timeout", 300))))
    except TimeoutError:
        emit({"event": "error", "message": f"{job['role']} timed out after {job['timeout']} s"})
        return 1
    except Exception as exc:
        emit(
            {
                "event": "error",
                "message": f"{job['role']}: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
