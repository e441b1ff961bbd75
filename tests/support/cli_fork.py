"""Run the real `screener` CLI in a fresh process forked from one that has already imported it.

Starting Python and importing the CLI (SQLAlchemy, pydantic, Typer, Rich) costs more than most commands take:
about 1.3 s of a 2 s command on the CI machine, and the suite runs hundreds of commands. A fork server per test
process imports ``screener.cli`` once; each command is then a child forked from it: a separate process with its
own argv, environment, working directory, stdin, stdout, stderr and exit status, running the same
``screener.cli.main`` the console script runs. Only interpreter start-up and imports are skipped, which the
project keeps free of side effects. Anything that is not a plain `screener` command as this OS user (a daemon,
``python -X importtime``, another account through runuser) still runs as a real subprocess, and
``SCREENER_TESTS_REAL_CLI=1`` sends every command there.

Protocol (one Unix socket connection per command): the client sends one JSON line {argv, env, cwd, stdin, stdout,
stderr} (file paths); the server forks, replies {"pid"}, and when the child ends {"status"}. The server forks
from its one thread only (a select loop), never from a thread that could hold a lock.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SCREENER = Path(sys.executable).with_name("screener")
START_TIMEOUT_S = 60.0
MAX_CONNECTIONS = 64
_lock = threading.Lock()
_server: subprocess.Popen[bytes] | None = None
_socket_path: str | None = None


# --- the server (runs in its own process) -----------------------------------------------------------------
def _child(request: dict[str, Any], inherited: list[socket.socket]) -> None:
    """In the forked child: become the command, then end as the console script does (``sys.exit(main())``:
    the interpreter's normal shutdown closes what the command left open, SQLite checkpointing its WAL)."""
    for sock in inherited:  # the server's listener and its other commands' connections
        sock.close()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, mode in ((0, request["stdin"], os.O_RDONLY), (1, request["stdout"], os.O_WRONLY),
                           (2, request["stderr"], os.O_WRONLY)):  # fmt: skip
        target = os.open(path, mode)
        os.dup2(target, fd)
        os.close(target)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.argv = [str(SCREENER), *request["argv"]]
    from screener.cli import main

    sys.exit(main())


def serve(path: str) -> None:
    """The fork server's loop: import the CLI once, then fork one child per connection."""
    import screener.cli  # noqa: F401  (the point: imported once, inherited by every child)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(MAX_CONNECTIONS)
    print("ready", flush=True)
    children: dict[int, socket.socket] = {}
    while True:
        ready, _, _ = select.select([listener], [], [], 0.02)
        if ready:
            conn, _ = listener.accept()
            request = json.loads(conn.makefile("rb").readline())
            pid = os.fork()
            if pid == 0:
                _child(request, [listener, conn, *children.values()])
            children[pid] = conn
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                conn = children.pop(pid)
                try:
                    conn.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                except OSError:
                    pass  # the client gave up (its timeout)
                conn.close()


# --- the client (runs in the test process) ----------------------------------------------------------------
def _ensure_server() -> str:
    global _server, _socket_path
    with _lock:
        if _server is not None and _server.poll() is None and _socket_path is not None:
            return _socket_path
        path = tempfile.mktemp(prefix="screener-cli-", suffix=".sock", dir="/tmp")
        code = f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r}); " \
               f"from tests.support.cli_fork import serve; serve({path!r})"  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        if not ready or proc.stdout.readline().strip() != b"ready":
            proc.kill()
            raise RuntimeError("the CLI fork server did not start")
        _server, _socket_path = proc, path
        atexit.register(_stop_server, proc, path)
        return path


def _stop_server(proc: subprocess.Popen[bytes], path: str) -> None:
    proc.kill()
    proc.wait(timeout=10)
    Path(path).unlink(missing_ok=True)


def _forkable(argv: Sequence[str] | str) -> bool:
    if os.environ.get("SCREENER_TESTS_REAL_CLI") == "1" or isinstance(argv, str) or not argv:
        return False
    return Path(str(argv[0])) == SCREENER


def run(
    argv: Sequence[str] | str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    input: str | bytes | None = None,
    timeout: float | None = None,
    capture_output: bool = False,
    text: bool = False,
    check: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with the same arguments; a `screener` command run with ``capture_output=True,
    text=True`` is forked from the server instead (the same result, without the start-up)."""
    if not (_forkable(argv) and capture_output and text and not kwargs and not isinstance(input, bytes)):
        return subprocess.run(
            argv, env=env, cwd=cwd, input=input, timeout=timeout, capture_output=capture_output, text=text,
            check=check, **kwargs,
        )  # fmt: skip
    assert not isinstance(argv, str)
    with tempfile.TemporaryDirectory(prefix="screener-cli-") as tmp:
        files = {name: Path(tmp) / name for name in ("stdin", "stdout", "stderr")}
        files["stdin"].write_text(input or "")
        files["stdout"].touch()
        files["stderr"].touch()
        request = {
            "argv": [str(a) for a in argv[1:]],
            "env": dict(env if env is not None else os.environ),
            "cwd": str(cwd or os.getcwd()),
            **{name: str(path) for name, path in files.items()},
        }
        status = _exchange(request, [str(a) for a in argv], timeout)
        out, err = (files[n].read_text(errors="replace") for n in ("stdout", "stderr"))
    if check and status != 0:
        raise subprocess.CalledProcessError(status, list(argv), out, err)
    return subprocess.CompletedProcess(list(argv), status, out, err)


def _exchange(request: dict[str, Any], argv: list[str], timeout: float | None) -> int:
    deadline = None if timeout is None else time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(START_TIMEOUT_S)
        conn.connect(_ensure_server())
        conn.sendall(json.dumps(request).encode() + b"\n")
        reader = conn.makefile("rb")
        pid = json.loads(reader.readline())["pid"]
        conn.settimeout(None if deadline is None else max(0.001, deadline - time.monotonic()))
        try:
            line = reader.readline()
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(argv, timeout or 0.0) from None
        if not line:
            raise RuntimeError(f"the CLI fork server ended while running {argv}")
        return int(json.loads(line)["status"])
