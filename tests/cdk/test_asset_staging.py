"""The code asset's staging folder: private to the user, and never reused when its files differ."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitlab_key_rotation import assets


def test_an_altered_staged_copy_is_staged_again(tmp_path, monkeypatch):
    monkeypatch.setattr(assets.tempfile, "tempdir", str(tmp_path))
    staged = Path(assets.lambda_code({"settings.json": b"{}"}).path)
    handler = staged / "gitlab_key_rotation" / "lambda_src" / "rotation" / "handler.py"
    original = handler.read_bytes()
    handler.write_bytes(b"import os  # planted\n")
    (staged / "extra.py").write_text("planted = True\n")

    again = Path(assets.lambda_code({"settings.json": b"{}"}).path)

    assert again == staged and handler.read_bytes() == original and not (staged / "extra.py").exists()
    assert oct((tmp_path / assets._STAGING_NAME).stat().st_mode & 0o777) == "0o700"


def test_a_staging_folder_others_may_write_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(assets.tempfile, "tempdir", str(tmp_path))
    root = tmp_path / assets._STAGING_NAME
    root.mkdir()
    os.chmod(root, 0o777)
    with pytest.raises(RuntimeError, match="is not a private directory of this user"):
        assets.lambda_code()
