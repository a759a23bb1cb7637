"""Build the worker's AWS Lambda package (``make lambda``): ``dist/walletql-worker-lambda.zip``.

The package holds the worker's own dependencies, installed from manylinux x86_64 wheels for
the Lambda runtime's Python at the versions in ``uv.lock``, and walletql's packages. It leaves
out boto3 and botocore, which every AWS Python runtime ships: the SQS adapter calls botocore
through a thread there. The handler is ``worker.lambda_handler.handler``.

    python -m walletql.lambda_build [--python 3.12] [--output dist/walletql-worker-lambda.zip]

Run from a checkout (it reads ``pyproject.toml`` and ``uv.lock``); needs uv. Slimming: tests,
C and Cython sources, type stubs, console scripts, SQLAlchemy's other dialects and
pydantic.v1 are left out; shared libraries lose their debug sections when binutils'
``strip`` is found; bytecode is compiled in when an interpreter of the target version is
found (Lambda's file system is read-only, so Python could not cache it there).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "dist" / "walletql-worker-lambda.zip"
RUNTIME_PYTHON = "3.12"  # the Lambda runtime python3.12 (Amazon Linux 2023, glibc 2.34)
PLATFORM = "x86_64-manylinux_2_28"
HANDLER = "worker.lambda_handler.handler"
LIMIT_BYTES = 17_800_000  # the old Node design's whole deployment: 17.8 MB
# What the worker imports, by distribution name as pyproject spells it; the versions and
# extras come from pyproject.toml and uv.lock.
WORKER_DISTRIBUTIONS = (
    "aiohttp", "alembic", "asyncpg", "prometheus-client", "pydantic-settings", "sqlalchemy",
)  # fmt: skip
PROJECT_PACKAGES = ("walletql", "services", "worker", "db", "migrations")
PROJECT_LEFT_OUT = ("walletql/static",)  # GraphiQL's assets: the API's alone
# Folders of installed distributions that the worker never loads.
PRUNED_FOLDERS = (
    "bin", "sqlalchemy/dialects/mysql", "sqlalchemy/dialects/mssql",
    "sqlalchemy/dialects/oracle", "sqlalchemy/dialects/sqlite", "sqlalchemy/testing",
    "sqlalchemy/ext/mypy", "pydantic/v1", "alembic/testing", "alembic/templates",
)  # fmt: skip
PRUNED_SUFFIXES = (".pyx", ".pxd", ".pxi", ".c", ".h", ".cpp", ".hpp", ".pyi")


class BuildError(RuntimeError):
    """The package cannot be built (uv failed, or it came out too big)."""


@dataclass
class Build:
    output: Path
    python: str
    zipped: int = 0
    unzipped: int = 0
    files: int = 0
    stripped: bool = False
    compiled_with: str | None = None
    by_top: dict[str, int] = field(default_factory=dict)  # compressed bytes per top entry

    def top(self, count: int = 10) -> list[tuple[str, int]]:
        return sorted(self.by_top.items(), key=lambda kv: -kv[1])[:count]


def uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def run(*args: str, cwd: Path = ROOT) -> str:
    # The build's own tools (uv, strip, an interpreter), with arguments built here.
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BuildError(f"{' '.join(args[:4])} … failed: {done.stderr.strip()[-1500:]}")
    return done.stdout


def worker_requirements() -> list[str]:
    """The worker's entries of pyproject's dependencies (with their extras)."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = []
    for name in WORKER_DISTRIBUTIONS:
        matches = [d for d in dependencies if d.split("[")[0].split(">")[0].strip() == name]
        if not matches:
            raise BuildError(f"{name} is not among pyproject's dependencies")
        wanted.append(matches[0])
    return wanted


def install(target: Path, python: str, work: Path) -> None:
    constraints = work / "constraints.txt"
    run(*uv(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project",
        "--quiet", "-o", str(constraints))  # fmt: skip
    # Copies, not links into uv's cache: strip rewrites the libraries in place, and a
    # hard-linked file is the same file in every environment installed from that cache.
    run(*uv(), "pip", "install", "--no-config", "--quiet", "--link-mode", "copy",
        "--target", str(target), "--python-platform", PLATFORM, "--python-version", python,
        "--only-binary", ":all:", "-c", str(constraints), *worker_requirements())  # fmt: skip


def prune(target: Path) -> None:
    for folder in PRUNED_FOLDERS:
        shutil.rmtree(target / folder, ignore_errors=True)
    for path in list(target.rglob("*")):
        if path.is_dir() and path.name in ("tests", "__pycache__"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in PRUNED_SUFFIXES:
            path.unlink()


def strip_debug(target: Path) -> bool:
    """Drop debug sections from shared libraries (about a third of the zip)."""
    strip = shutil.which("strip")
    if strip is None:
        return False
    libraries = list(target.rglob("*.so"))
    shared = [str(p) for p in libraries if p.stat().st_nlink > 1]
    if shared:  # never rewrite a file that another environment also uses
        raise BuildError(f"refusing to strip hard-linked files: {', '.join(shared[:3])}")
    if libraries:
        run(strip, "--strip-debug", *map(str, libraries))
    return True


def add_project(target: Path) -> None:
    left_out = {ROOT / p for p in PROJECT_LEFT_OUT}

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
        return skipped | {n for n in names if Path(folder, n) in left_out}

    for package in PROJECT_PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=ignore)


def interpreter_for(python: str, given: str | None = None) -> str | None:
    """A local interpreter of the target version, to compile bytecode; never downloaded."""
    candidates = [given] if given else [sys.executable, shutil.which(f"python{python}")]
    with contextlib.suppress(BuildError):
        candidates.append(run(*uv(), "python", "find", "--no-python-downloads", python).strip())
    for candidate in filter(None, candidates):
        with contextlib.suppress(BuildError, OSError):
            version = run(candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])")
            if version.strip() == python:
                return candidate
    if given:
        raise BuildError(f"{given} is not a Python {python}")
    return None


def compile_bytecode(target: Path, interpreter: str) -> None:
    # Unchecked hash-based .pyc: valid whatever the files' times become inside the zip.
    run(interpreter, "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash", str(target))  # fmt: skip


def write_zip(target: Path, build: Build) -> None:
    build.output.parent.mkdir(parents=True, exist_ok=True)
    partial = build.output.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            relative = path.relative_to(target).as_posix()
            info = zipfile.ZipInfo(relative, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    with zipfile.ZipFile(partial) as archive:
        for info in archive.infolist():
            top = info.filename.split("/", 1)[0]
            if top.endswith(".dist-info"):
                top = "(dist-info)"
            build.by_top[top] = build.by_top.get(top, 0) + info.compress_size
            build.unzipped += info.file_size
            build.files += 1
    os.replace(partial, build.output)
    build.zipped = build.output.stat().st_size


def build_package(
    output: Path = DEFAULT_OUTPUT, python: str = RUNTIME_PYTHON, interpreter: str | None = None
) -> Build:
    """Build the zip; BuildError when it fails or exceeds LIMIT_BYTES. ``interpreter`` (a
    Python of the target version) compiles the bytecode; by default one is looked for."""
    build = Build(output, python)
    with tempfile.TemporaryDirectory(prefix="walletql-lambda-") as work_dir:
        work = Path(work_dir)
        target = work / "package"
        install(target, python, work)
        prune(target)
        build.stripped = strip_debug(target)
        add_project(target)
        compiler = interpreter_for(python, interpreter)
        if compiler is not None:
            compile_bytecode(target, compiler)
            build.compiled_with = compiler
        write_zip(target, build)
    if build.zipped > LIMIT_BYTES:
        raise BuildError(
            f"{output} is {build.zipped / 1e6:.1f} MB, above the {LIMIT_BYTES / 1e6} MB limit"
        )
    return build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m walletql.lambda_build", description=__doc__)
    parser.add_argument("--python", default=RUNTIME_PYTHON, help="the runtime's Python (X.Y)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--interpreter", help="a Python of that version, to compile bytecode")
    args = parser.parse_args(argv)
    try:
        build = build_package(args.output, args.python, args.interpreter)
    except BuildError as exc:
        print(f"lambda build: {exc}", file=sys.stderr)
        return 1
    print(f"{build.output}: {build.zipped / 1e6:.2f} MB zipped, {build.unzipped / 1e6:.1f} MB "
          f"unzipped, {build.files} files; runtime python{build.python} x86_64; "
          f"handler {HANDLER}")  # fmt: skip
    compiled = build.compiled_with or "none (no local interpreter of that version)"
    stripped = "yes" if build.stripped else "no (no strip found)"
    print(f"  debug sections stripped: {stripped}; bytecode: {compiled}")
    for top, size in build.top():
        print(f"  {top:<24} {size / 1e6:6.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
