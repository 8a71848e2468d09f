"""A real `tether serve` process for the HTTP tests: started on a free port, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

TETHER = Path(sys.executable).with_name("tether")
UP_WITHIN = 30.0  # seconds for `tether serve` to answer /healthz on a loaded machine
STOP_WITHIN = 10.0  # seconds for it to exit after SIGTERM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One `tether serve` subprocess; its stdout and stderr go to files."""

    proc: subprocess.Popen[bytes]
    url: str
    out: Path
    err: Path

    def stderr_lines(self) -> list[str]:
        return [line for line in self.err.read_text(errors="replace").splitlines() if line.strip()]

    def logs(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    log_text = logs

    def stop(self) -> None:
        """SIGTERM, bounded; a server that does not stop in time is killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_WITHIN)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_WITHIN)


def start_server(
    db_url: str,
    tmp: Path,
    *,
    evaluate_every: float = 0,
    log_format: str | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """`tether serve` on a free port with the system clock; waits (bounded) until /healthz answers."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    base.update(env or {})
    for _ in range(3):  # another process may take the free port first
        port = free_port()
        cmd = [TETHER, "serve", "--port", port, "--db", db_url, "--evaluate-every", evaluate_every]
        if log_format is not None:
            cmd += ["--log-format", log_format]
        out, err = tmp / f"serve-{port}.out", tmp / f"serve-{port}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen([str(c) for c in cmd], stdout=o, stderr=e, env=base, cwd=tmp)
        server = Server(proc, f"http://127.0.0.1:{port}", out, err)
        if _wait_up(server):
            return server
        server.stop()
        if "address already in use" not in server.logs().lower():
            raise AssertionError(f"tether serve did not come up:\n{server.logs()}")
    raise AssertionError("no free port for tether serve")


def _wait_up(server: Server) -> bool:
    deadline = time.monotonic() + UP_WITHIN
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return False
        try:
            if httpx.get(server.url + "/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def stop_server(server: Server) -> int:
    """SIGTERM, then the exit code; a server still running after STOP_WITHIN seconds is killed and fails."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        raise AssertionError(f"tether serve still running {STOP_WITHIN} s after SIGTERM") from None
