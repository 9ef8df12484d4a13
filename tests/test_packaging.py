"""The wheel installs anywhere: every module, the packaged configs and the command registry ship in it.

The wheel is built offline from a copy of the working tree (``pip wheel --no-deps
--no-build-isolation``: the build uses this environment's setuptools, which the ``dev`` extra
brings; a build in the tree itself would leave ``build/`` behind, whose stale modules a
later build would ship). Then its contents are checked against the source, and its packages,
unpacked, are imported ahead of the checkout to show they find their configs by name.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mofa_checks", "renderers", "mofa_bench", "evaluation")
#: The study's commands, plugged into ``mofa-bench`` through the ``mofa_bench.commands`` group.
COMMANDS = {"bench", "diagnose", "report", "suite"}
#: The build backend's own minimum (``[build-system] requires`` in pyproject.toml).
MIN_SETUPTOOLS = int(re.search(r'"setuptools>=(\d+)"', (ROOT / "pyproject.toml").read_text()).group(1))
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _source_files(package: str) -> list[str]:
    """Every file of a package folder, as wheel paths (``mofa_bench/configs/quick.yaml``)."""
    base = ROOT / package
    return sorted(p.relative_to(ROOT).as_posix() for p in base.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory) -> Path:
    if int(version("setuptools").split(".")[0]) < MIN_SETUPTOOLS:
        pytest.skip(f"building the wheel offline needs setuptools>={MIN_SETUPTOOLS} here (the dev extra); "
                    f"found {version('setuptools')}")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=_IGNORE)
    out = tmp / "dist"
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                          "--no-index", "--disable-pip-version-check", "-v", "-w", str(out)],
                         capture_output=True, text=True, timeout=300)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    # The build backend's warnings (pip -v shows them): e.g. a `license` table instead of an SPDX string.
    warnings = [line.strip() for line in log.splitlines() if re.search(r"(BuildBackend|Deprecation)Warning", line)]
    assert not warnings, warnings
    wheels = list(out.glob("mofa_bench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def names(wheel_path) -> set[str]:
    with zipfile.ZipFile(wheel_path) as wheel:
        return set(wheel.namelist())


def _dist_info(wheel_path: Path, name: str) -> str:
    with zipfile.ZipFile(wheel_path) as wheel:
        (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
        return wheel.read(path).decode()


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_and_data_file_ships(names, package):
    files = _source_files(package)
    assert f"{package}/__init__.py" in files
    missing = [f for f in files if f not in names]
    assert not missing, f"not in the wheel: {missing}"


def test_the_packaged_configs_ship(names):
    train = {"quick", "synthetic", "converge", "paper"}
    suites = {"quick", "smoke", "learning_cpu", "paper"}
    assert {f"mofa_bench/configs/{n}.yaml" for n in train} <= names
    assert {f"mofa_bench/configs/suites/{n}.yaml" for n in suites} <= names


def test_only_the_packages_ship(names):
    tops = {name.split("/")[0] for name in names}
    assert tops == {*PACKAGES, "mofa_bench-0.1.0.dist-info"}


def test_entry_points(wheel_path, names):
    entry = configparser.ConfigParser()
    entry.optionxform = str  # keep the names' case
    entry.read_string(_dist_info(wheel_path, "entry_points.txt"))
    assert dict(entry["console_scripts"]) == {"mofa-bench": "mofa_bench.cli:main"}
    commands = dict(entry["mofa_bench.commands"])
    assert set(commands) == COMMANDS
    for target in commands.values():
        module, _, function = target.partition(":")
        assert function == "register_cli"
        assert f"{module.replace('.', '/')}.py" in names, target


def test_metadata(wheel_path):
    lines = _dist_info(wheel_path, "METADATA").splitlines()
    assert "License-Expression: MIT" in lines
    assert "Requires-Dist: torch>=2.1" in lines
    assert 'Requires-Dist: torch==2.12.0; extra == "pytorch3d"' in lines


def test_unpacked_wheel_finds_its_configs_by_name(wheel_path, tmp_path):
    """The wheel's own packages, ahead of the checkout on ``sys.path``, load configs and suites by name."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel_path) as wheel:
        wheel.extractall(site)
    code = """
import sys
from pathlib import Path
site = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(site))
import mofa_bench
from evaluation.suite.spec import load_suite_spec
from mofa_bench.config import load_config
from mofa_bench.configs import config_path
assert Path(mofa_bench.__file__).resolve().is_relative_to(site), mofa_bench.__file__
assert config_path("quick").resolve() == site / "mofa_bench" / "configs" / "quick.yaml"
assert load_config("quick").name == "quick"
spec = load_suite_spec("quick")
assert spec.base == site / "mofa_bench" / "configs" / "quick.yaml", spec.base
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout[-3000:] + run.stderr[-3000:]
