"""A strategy from a separately built and pip-installed distribution, found by name."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import NodeFactory
from nodemesh.cluster import Cluster, available_strategies, load_toml
from nodemesh.errors import ConfigError
from support.net import wait_for

# The plug-in of docs/strategies.md: nodes listed one per line in a text file.
PLUGIN = '''
"""nodemesh strategy: the node names listed in a text file, one per line."""
from __future__ import annotations

import asyncio
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from nodemesh.cluster import PollingStrategy
from nodemesh.errors import ConfigError, DiscoveryError


class NodesFileStrategy(PollingStrategy):
    name = "nodes_file"

    @dataclass(frozen=True, slots=True)
    class Options:
        path: str
        polling_interval: int = 5000

        def __post_init__(self) -> None:
            if self.polling_interval <= 0:
                raise ConfigError("option 'polling_interval' must be positive")

    options: Options

    async def discover(self) -> Set[str]:
        try:
            text = await asyncio.to_thread(Path(self.options.path).read_text)
        except OSError as exc:
            raise DiscoveryError(f"cannot read {self.options.path}: {exc}") from exc
        return {line.strip() for line in text.splitlines() if line.strip()}
'''

PYPROJECT = """
[build-system]
requires = []
build-backend = "wheel_backend"
backend-path = ["."]

[project]
name = "nodemesh-nodes-file"
version = "1.0"

[project.entry-points."nodemesh.strategies"]
nodes_file = "nodemesh_nodes_file:NodesFileStrategy"
"""

# A minimal PEP 517 backend, so that the build needs nothing from an index (CI's venv has
# neither hatchling nor wheel): it zips the module and the .dist-info files.
BACKEND = """
import base64, hashlib, zipfile

NAME, VERSION = "nodemesh_nodes_file", "1.0"
INFO = f"{NAME}-{VERSION}.dist-info"
META = "Metadata-Version: 2.1\\nName: nodemesh-nodes-file\\nVersion: 1.0\\n"
WHEEL = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
ENTRY = "[nodemesh.strategies]\\nnodes_file = nodemesh_nodes_file:NodesFileStrategy\\n"


def _hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {
        f"{NAME}.py": open(f"{NAME}.py", "rb").read(),
        f"{INFO}/METADATA": META.encode(),
        f"{INFO}/WHEEL": WHEEL.encode(),
        f"{INFO}/entry_points.txt": ENTRY.encode(),
    }
    record = "".join(f"{path},{_hash(data)},{len(data)}\\n" for path, data in files.items())
    wheel = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(f"{wheel_directory}/{wheel}", "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{INFO}/RECORD", record + f"{INFO}/RECORD,,\\n")
    return wheel
"""


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Build and pip-install the plug-in into a private directory put on sys.path."""
    source, site = tmp_path / "src", tmp_path / "site"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "wheel_backend.py").write_text(textwrap.dedent(BACKEND))
    (source / "nodemesh_nodes_file.py").write_text(PLUGIN)
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    flags = ["--no-index", "--no-cache-dir", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, *flags, "--target", str(site), str(source)], check=True, timeout=120)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("nodemesh_nodes_file", None)


async def test_plugin_strategy_loads_by_name_from_toml(
    installed_plugin: Path, make_node: NodeFactory, tmp_path: Path
) -> None:
    """An installed distribution's entry point is a strategy a TOML topology can name."""
    assert available_strategies()["nodes_file"] == "nodemesh_nodes_file:NodesFileStrategy"
    a, b = await make_node("a"), await make_node("b")
    nodes = tmp_path / "nodes.txt"
    nodes.write_text(f"{b.name}\n")
    config = tmp_path / "cluster.toml"
    config.write_text(
        f'[topologies.files]\nstrategy = "nodes_file"\n'
        f'config = {{ path = "{nodes}", polling_interval = 100 }}\n'
    )
    [topology] = load_toml(config)
    assert topology.strategy_class.__module__ == "nodemesh_nodes_file"
    async with Cluster(a, [topology]):
        await wait_for(lambda: a.nodes() == [b.name])
    bad = tmp_path / "bad.toml"
    bad.write_text('[topologies.files]\nstrategy = "nodes_file"\nconfig = { paht = "x" }\n')
    with pytest.raises(ConfigError, match="topology 'files': unknown option 'paht'"):
        load_toml(bad)
