"""`inferlab serve` refuses what it cannot serve before it listens: one line naming the flag, exit 2, and no
database or data folder left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import cli


@pytest.mark.parametrize(("args", "words"), [
    (["--token", "short"], "--token: 5 characters"),
    (["--data", "{file}/data"], "--data {file}/data: cannot create it"),
    (["--db", "{file}/r.db"], "cannot open"),
    (["--port", "99999"], "--port"),
])
def test_serve_refuses_bad_flags_in_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    given = [a.replace("{file}", str(file)) for a in args]
    defaults = {"--db": str(tmp_path / "ok.db"), "--data": str(tmp_path / "data")}
    flags = [x for k, v in defaults.items() if k not in given for x in (k, v)]
    out = cli("serve", *flags, *given, "--port" if "--port" not in given else "--host", "0" if "--port" not in given
              else "127.0.0.1", timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert words.replace("{file}", str(file)) in text, text
    if "--port" not in given:
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    if "--data" in given:
        assert not (tmp_path / "ok.db").exists()  # refused before the database was opened
