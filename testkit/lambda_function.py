"""The worker's Lambda package as AWS runs it: unpacked, on an interpreter that has boto3 and
nothing else, the handler imported once and then invoked per batch (a warm container)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import TracebackType
from typing import Any

from testkit import ROOT
from walletql.lambda_build import Build, build_package, uv

LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

# Lambda's bootstrap in a few lines: import the handler, then one invocation per stdin line.
DRIVER = r"""
import json, sys, time
started = time.perf_counter()
from worker.lambda_handler import handler
print(json.dumps({"import_s": time.perf_counter() - started}), flush=True)
for line in sys.stdin:
    began = time.perf_counter()
    result = handler(json.loads(line), None)
    modules = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"result": result, "seconds": time.perf_counter() - began,
                      "modules": modules}), flush=True)
"""


def build_and_unpack(folder: Path, python: str = LOCAL_PYTHON) -> tuple[Build, Path]:
    """``make lambda``'s builder, for ``python`` (the local interpreter's version by
    default: the package holds compiled extensions), unpacked under ``folder``."""
    build = build_package(folder / "walletql-worker-lambda.zip", python)
    unpacked = folder / "task"
    with zipfile.ZipFile(build.output) as archive:
        archive.extractall(unpacked)
    return build, unpacked


def clean_interpreter(python: str = LOCAL_PYTHON) -> Path:
    """A venv with boto3 from PyPI and nothing else, kept under .data between runs."""
    folder = ROOT / ".data" / f"lambda-python{python}"
    interpreter = folder / "bin" / "python"
    probe = [str(interpreter), "-c", "import boto3"]
    if interpreter.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return interpreter
    base = sys.executable if python == LOCAL_PYTHON else python
    for command in (
        [*uv(), "venv", "--no-config", "--quiet", "--python", base, str(folder)],
        [*uv(), "pip", "install", "--no-config", "--quiet", "--python", str(interpreter),
         "boto3"],
    ):  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
    return interpreter


def lambda_env(task_root: Path, **settings: str) -> dict[str, str]:
    """What the Lambda runtime gives the function: its folder on the path, no bytecode
    writes (read-only), and the function's variables; nothing of this machine's Python."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(task_root),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **settings,
    }


class LambdaContainer:
    """``async with LambdaContainer(python, task_root, env) as fn: await fn.invoke(event)``."""

    def __init__(self, interpreter: Path, task_root: Path, env: dict[str, str]) -> None:
        self._command = [str(interpreter), "-c", DRIVER]
        self._cwd = task_root
        self._env = env
        self._proc: asyncio.subprocess.Process | None = None
        # The function's log (CloudWatch's part): a file, so a chatty run never blocks.
        self.log = task_root.parent / "lambda.log"
        self.import_seconds = float("nan")

    async def __aenter__(self) -> LambdaContainer:
        with self.log.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *self._command, cwd=self._cwd, env=self._env, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        self.import_seconds = (await self._answer())["import_s"]
        return self

    async def _answer(self) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout=120)
        if not line:
            err = self.log.read_text(errors="replace")
            raise RuntimeError(f"the Lambda process exited: {err[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """One invocation: {"result": the handler's answer, "seconds", "modules"}."""
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(event).encode() + b"\n")
        await self._proc.stdin.drain()
        return await self._answer()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
