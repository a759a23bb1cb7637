"""GraphQL Code Generator with strictScalars on schema.graphql, then tsc --strict on the output.

The config is tests/node/codegen/codegen.ts, the same scalars map as the README; usage.ts
checks that each scalar became the TypeScript type the README promises (a wrong mapping makes
an assignment or an @ts-expect-error fail to compile)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from testkit.anvil import NODE_DIR, NODE_MODULES
from tests.node_support import require_node_package

ROOT = NODE_DIR.parent.parent
CODEGEN = NODE_DIR / "codegen"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_codegen_with_strict_scalars_compiles(tmp_path: Path) -> None:
    require_node_package("@graphql-codegen/cli")
    require_node_package("typescript")
    for name in ("usage.ts", "tsconfig.json"):
        shutil.copy(CODEGEN / name, tmp_path / name)
    env = {
        **os.environ,
        "WALLETQL_CODEGEN_SCHEMA": str(ROOT / "schema.graphql"),
        "WALLETQL_CODEGEN_DOCUMENTS": str(CODEGEN / "operations.graphql"),
        "WALLETQL_CODEGEN_OUT": str(tmp_path / "out" / "graphql.ts"),
    }
    bin_dir = NODE_MODULES / ".bin"
    generated = run(
        [str(bin_dir / "graphql-codegen"), "--config", str(CODEGEN / "codegen.ts")], env
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    types = (tmp_path / "out" / "graphql.ts").read_text()
    assert "wei: string" in types  # BigInt
    assert "address: `0x${string}`" in types  # Address
    assert "chainId: number" in types  # ChainId
    compiled = run([str(bin_dir / "tsc"), "-p", str(tmp_path / "tsconfig.json")], env)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
