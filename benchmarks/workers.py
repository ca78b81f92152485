"""Serve an ASGI app with uvicorn in several worker processes that share one listening socket.

    python benchmarks/workers.py MODULE:APP PORT WORKERS

What ``uvicorn --workers N`` does, except for one thing: uvicorn binds that socket with protocol 0, so
asyncio does not set TCP_NODELAY on the connections it accepts (it only does for IPPROTO_TCP sockets),
and a response written in two parts (head, then body) waits ~40 ms for the client's delayed ACK. Here
the socket is made with IPPROTO_TCP. Measured on this machine: 44 ms against 1.4 ms at one caller.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
from pathlib import Path

import uvicorn


def serve(app: str, sock: socket.socket) -> None:
    config = uvicorn.Config(app, access_log=False, log_level="warning", server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> int:
    app, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.path.insert(0, str(Path.cwd()))  # as uvicorn's command line does: MODULE is importable from here
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=serve, args=(app, sock)) for _ in range(workers)]
    for process in processes:
        process.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the finally below stops the workers
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
