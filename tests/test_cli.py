import subprocess
import sys

from secptune.cli import main


def test_costs_and_selftest(capsys):
    assert main(["costs"]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "trunc" in out
    assert main(["selftest", "--seed", "3"]) == 0
    assert "lt exact" in capsys.readouterr().out


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "secptune", "costs"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "mul" in r.stdout


def test_no_top_level_engine_package_is_importable_from_site_packages(tmp_path):
    code = "import importlib.util as u; print(u.find_spec('engine'), u.find_spec('nn'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.stdout.strip() == "None None", r.stdout
