"""`tianji migrate`, `tianji serve --no-migrate`, and `tianji check` on database_url."""

from __future__ import annotations

from pathlib import Path

import pytest

from tianji.cli import main
from tianji.compile.pipeline import build


def _config(tmp_path: Path, database_url: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: m\n"
        "    litellm_params: {model: mock/m}\n"
        "general_settings:\n"
        "  master_key: sk-test-master\n"
        f"  database_url: {database_url}\n"
    )
    return config


def test_migrate_applies_once_and_check_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["migrate", "--config", str(config), "--check"]) == 1
    assert "pending migrations" in capsys.readouterr().err
    assert main(["migrate", "--config", str(config)]) == 0
    assert "applied 2 migrations" in capsys.readouterr().out
    assert main(["migrate", "--config", str(config)]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert main(["migrate", "--config", str(config), "--check"]) == 0


def test_serve_no_migrate_refuses_a_schema_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'behind.db'}")
    assert main(["serve", "--config", str(config), "--no-migrate", "--port", "1"]) == 1
    assert "tianji migrate" in capsys.readouterr().err


def test_unreachable_database_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, "postgresql://postgres@127.0.0.1:1/nowhere")
    assert main(["migrate", "--config", str(config)]) == 1
    assert "postgresql://postgres@127.0.0.1:1/nowhere" in capsys.readouterr().err


def test_check_reports_an_unsupported_database_url(tmp_path: Path) -> None:
    built, problems = build(_config(tmp_path, "mysql://db/x"), strict_env=False)
    assert built is None
    (problem,) = [p for p in problems if p.severity == "error"]
    assert problem.path == "general_settings.database_url" and "mysql" in problem.message
