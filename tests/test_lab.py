"""`make lab`, headless: JupyterLab starts in the repository root and prints its URL, and a chapter opened there
gets the venv's own python3 kernel, started in notebooks/ (the folder of the notebook, as Lab starts every
kernel). The chapter itself running top to bottom on the pipeline's outputs is tested in tests/test_pipeline.py,
which has those outputs."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"
CHAPTER = "notebooks/06_results_summary.ipynb"


@dataclass
class Lab:
    url: str
    token: str
    log: Path

    def api(self, method: str, path: str, body: dict | None = None) -> dict | None:
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=None if body is None else json.dumps(body).encode(),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """`make lab` on a free port with a known token, up and answering /api/status; shut down afterwards."""
    assert (VENV / "bin" / "jupyter-lab").is_file(), "no JupyterLab in .venv: `make venv` installs it (extra 'test' has it)"
    tmp = tmp_path_factory.mktemp("lab")
    port, token, log = _free_port(), secrets.token_hex(16), tmp / "lab.log"
    args = f"--no-browser --port={port} --ServerApp.port_retries=0 --IdentityProvider.token={token}"
    # -o: take the venv as installed (a test must not reinstall it); Lab's runtime files go to the temporary folder.
    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/.installed", "lab", f"LAB_ARGS={args}"],
            cwd=REPO,
            env=dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp / "runtime")),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Lab(f"http://127.0.0.1:{port}", token, log)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"make lab exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"JupyterLab never answered /api/status:\n{log.read_text()[-4000:]}"
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        yield server
    finally:
        _shut_down(server, process)


def _shut_down(lab: Lab, process: subprocess.Popen) -> None:
    """Lab's own shutdown (its kernels with it); failing that, SIGTERM, then SIGKILL, to make's process group."""
    if process.poll() is None:
        try:
            lab.api("POST", "/api/shutdown")
            process.wait(timeout=60)
            return
        except Exception:  # noqa: BLE001 - whatever went wrong, the server must not outlive the test
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue


async def _execute(lab: Lab, kernel_id: str, code: str, timeout: float = 120.0) -> tuple[dict, str]:
    """Run ``code`` in the kernel over Lab's websocket, as the notebook editor does: (execute_reply content, stdout)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    session = uuid.uuid4().hex
    ws_url = lab.url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels?session_id={session}"
    connection = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {lab.token}"}))
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "username": "test",
        "session": session,
        "msg_type": "execute_request",
        "version": "5.3",
        "date": datetime.now(timezone.utc).isoformat(),
    }
    content = {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    await connection.write_message(
        json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell", "buffers": []})
    )
    stdout, reply, idle = [], None, False
    try:
        while reply is None or not idle:
            raw = await asyncio.wait_for(connection.read_message(), timeout)
            assert raw is not None, "Lab closed the kernel's websocket"
            message = json.loads(raw)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "stream" and message["content"]["name"] == "stdout":
                stdout.append(message["content"]["text"])
            elif kind == "execute_reply":
                reply = message["content"]
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True
    finally:
        connection.close()
    return reply, "".join(stdout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_lab_serves_the_repository_and_prints_its_url(lab: Lab) -> None:
    listing = lab.api("GET", "/api/contents/notebooks")
    assert CHAPTER in {entry["path"] for entry in listing["content"]}  # root_dir is the repository
    port = lab.url.rsplit(":", 1)[1]
    # The URL to open, as Lab prints it (a token given on the command line is shown as "...").
    assert f"http://127.0.0.1:{port}/lab?token=" in lab.log.read_text(), lab.log.read_text()[-4000:]
    assert lab.api("GET", "/api/kernelspecs")["default"] == "python3"  # the notebooks' kernelspec name


def test_a_chapter_opened_in_lab_gets_the_venvs_python3_kernel_in_notebooks(lab: Lab) -> None:
    # What Lab's frontend does on opening a notebook: a session for its path, on the notebook's kernelspec.
    session = lab.api(
        "POST", "/api/sessions", {"path": CHAPTER, "type": "notebook", "name": Path(CHAPTER).name, "kernel": {"name": "python3"}}
    )
    kernel_id = session["kernel"]["id"]
    try:
        code = (
            "import json, os, sys, dmlfaces\n"
            "print(json.dumps({'cwd': os.getcwd(), 'prefix': sys.prefix, 'pid': os.getpid(), 'package': dmlfaces.__file__}))"
        )
        reply, stdout = asyncio.run(_execute(lab, kernel_id, code))
        assert reply["status"] == "ok", reply
        kernel = json.loads(stdout)
        assert Path(kernel["prefix"]).resolve() == VENV.resolve(), kernel  # the venv's python, not a global kernel
        assert Path(kernel["cwd"]).resolve() == (REPO / "notebooks").resolve(), kernel  # the notebook's folder
        assert Path(kernel["package"]).resolve().is_relative_to(REPO / "src"), kernel  # this checkout's package
        assert lab.api("GET", f"/api/kernels/{kernel_id}")["execution_state"] in {"idle", "busy"}
    finally:
        lab.api("DELETE", f"/api/sessions/{session['id']}")  # closing the notebook shuts its kernel down
    deadline = time.monotonic() + 30
    while _alive(kernel["pid"]):
        assert time.monotonic() < deadline, f"kernel {kernel['pid']} outlived its session"
        time.sleep(0.2)
    assert kernel_id not in {k["id"] for k in lab.api("GET", "/api/kernels")}
