"""pyproject.toml, constraints.txt and environment.yml must describe the same installable set."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def requirements(extra: str | None = None) -> list[Requirement]:
    project = pyproject()["project"]
    lines = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(line) for line in lines]


def test_every_requirement_is_pinned_and_satisfied_by_the_pin():
    pins = constraints()
    extras = pyproject()["project"]["optional-dependencies"]
    for requirement in requirements() + [r for e in extras for r in requirements(e)]:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is required but not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (
            f"{name}=={pins[name]} breaks {requirement}"
        )


def test_torch_is_pinned_exactly_but_required_loosely():
    assert constraints()["torch"] == "2.13.0"
    torch = next(r for r in requirements() if r.name == "torch")
    assert not any(spec.operator == "==" for spec in torch.specifier), "keep Colab's torch"


def test_torchaudio_is_never_installed():
    assert "torchaudio" not in constraints()
    text = (ROOT / "pyproject.toml").read_text() + (ROOT / "environment.yml").read_text()
    assert "torchaudio" not in text


def test_environment_yml_uses_python_311_and_the_same_torch_and_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    dependencies = env["dependencies"]
    assert "python=3.11" in dependencies
    pip_lines = next(d["pip"] for d in dependencies if isinstance(d, dict))
    assert "-c constraints.txt" in pip_lines
    torch_line = next(line for line in pip_lines if line.startswith("torch"))
    assert torch_line == f"torch=={constraints()['torch']}"
    assert any(re.match(r"-e \.(\[.*\])?$", line) for line in pip_lines)


def test_python_requirement_and_console_script():
    project = pyproject()["project"]
    assert project["requires-python"] == ">=3.10"
    assert project["scripts"]["serlib"] == "serlib.cli:main"
