"""The README and .env.example list every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from walletql.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    missing = [
        f"WALLETQL_{name.upper()}"
        for name in Settings.model_fields
        if f"WALLETQL_{name.upper()}" not in text
    ]
    assert not missing, f"{document} does not mention {missing}"
