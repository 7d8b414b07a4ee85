"""Build hook: compile the message path with Cython when a wheel is built from source.

Where a C compiler exists, the modules of ``nodemesh._build.COMPILED_MODULES`` are
translated by Cython (pure-Python mode: the ``.py`` files as they are, no ``.pyx``) and
compiled into extension modules that ship beside their ``.py`` files; the wheel is then
tagged for this interpreter and platform. Nothing is compiled for an editable install
(``pip install -e``: the ``.py`` files stay the code that runs, so edits take effect),
with ``NODEMESH_PURE_PYTHON=1``, or when no compiler works: the wheel is pure Python.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).parent
SRC = ROOT / "src"


def _modules() -> tuple[str, ...]:
    """COMPILED_MODULES, read without importing nodemesh (its dependencies may be absent)."""
    namespace: dict[str, Any] = {}
    text = (SRC / "nodemesh" / "_build.py").read_text()
    start = text.index("COMPILED_MODULES = (")
    exec(text[start : text.index(")", start) + 1], namespace)
    return tuple(namespace["COMPILED_MODULES"])


def _compiler() -> list[str] | None:
    """The command that links a shared object for this interpreter, if it runs."""
    ldshared = sysconfig.get_config_var("LDSHARED") or "cc -shared"
    command = shlex.split(ldshared)
    return command if shutil.which(command[0]) else None


def _compile(c_file: Path, out: Path, linker: list[str]) -> None:
    include = sysconfig.get_paths()["include"]
    flags = shlex.split(sysconfig.get_config_var("CFLAGS") or "")
    flags += shlex.split(sysconfig.get_config_var("CCSHARED") or "-fPIC")
    subprocess.run(
        [*linker, *flags, "-O2", "-g0", f"-I{include}", str(c_file), "-o", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )


def compile_modules(workdir: Path) -> dict[str, str]:
    """Compile every module; return {built file: its path inside the wheel}. Raises
    RuntimeError naming the module whose compilation failed."""
    from Cython.Build import cythonize

    linker = _compiler()
    if linker is None:
        raise RuntimeError("no C compiler")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    jobs: list[tuple[Path, Path, str]] = []
    for module in _modules():
        relative = Path(*module.split(".")).with_suffix(".py")
        source = workdir / relative
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SRC / relative, source)
        declarations = (SRC / relative).with_suffix(".pxd")  # C types for Cython, if any
        if declarations.exists():
            shutil.copyfile(declarations, source.with_suffix(".pxd"))
        jobs.append((source, source.with_suffix(suffix), relative.with_suffix(suffix).as_posix()))
    cythonize(
        [str(source) for source, _, _ in jobs],
        language_level=3,
        quiet=True,
        # Plain Python semantics: annotations are not turned into C type checks, so the
        # compiled module accepts exactly what the .py file accepts.
        compiler_directives={"annotation_typing": False, "binding": True},
    )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {
            pool.submit(_compile, src.with_suffix(".c"), out, linker): src for src, out, _ in jobs
        }
        for future, src in futures.items():
            try:
                future.result()
            except subprocess.CalledProcessError as exc:
                raise RuntimeError(f"compiling {src.name} failed:\n{exc.stderr}") from None
    return {str(out): target for _, out, target in jobs}


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """hatchling's hook: compiled extension modules into a regular wheel."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        if os.environ.get("NODEMESH_PURE_PYTHON") == "1":
            return
        self._workdir = tempfile.mkdtemp(prefix="nodemesh-build-")
        try:
            built = compile_modules(Path(self._workdir))
        except (ImportError, RuntimeError, OSError) as exc:
            print(f"nodemesh: building pure Python ({exc})", file=sys.stderr)
            return
        build_data["force_include"].update(built)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact: str) -> None:
        workdir = getattr(self, "_workdir", None)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
