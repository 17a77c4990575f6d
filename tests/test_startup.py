"""`regime` starts fast: the CLI module loads no heavy library until a command needs it."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "numpy", "mlflow", "lightgbm", "sklearn", "scipy", "matplotlib", "rich.table", "rich.progress")


def test_importing_the_cli_loads_no_heavy_library():
    code = ("import json, sys\nimport smallcap_regime.cli\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_help_lists_every_command_without_loading_heavy_libraries():
    code = ("import json, sys\nfrom typer.testing import CliRunner\nfrom smallcap_regime.cli import app\n"
            "result = CliRunner().invoke(app, ['--help'])\n"
            f"print(json.dumps([result.exit_code, result.output, [m for m in {HEAVY!r} if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, text, loaded = json.loads(out.stdout)
    assert exit_code == 0 and loaded == []
    for command in ("data", "features", "backtest", "train", "tune", "predict", "serve", "ui", "quickstart"):
        assert f"  {command} " in text
