"""tdann.sources: which library files a step depends on (modules and packages, relative and absolute imports)."""

from pathlib import Path

from tdann import sources


def _library(tmp_path: Path) -> Path:
    lib = tmp_path / "tdann"
    (lib / "pkg").mkdir(parents=True)
    (lib / "a.py").write_text("from . import b\nfrom .pkg import thing\n")
    (lib / "b.py").write_text("import numpy as np\nfrom tdann.c import x\n")
    (lib / "c.py").write_text("x = 1\n")
    (lib / "d.py").write_text("from .missing import y\n")
    (lib / "pkg" / "__init__.py").write_text("from .inner import thing\n")
    (lib / "pkg" / "inner.py").write_text("from ..c import x\nfrom .. import d\nthing = x\n")
    return lib


def test_imports_read_relative_absolute_and_package_imports(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    assert sources.imports("a", lib) == {"b", "pkg"}
    assert sources.imports("b", lib) == {"c"}  # numpy is not the library's
    assert sources.imports("pkg", lib) == {"c", "d"}  # `from .inner` is the package's own file
    assert sources.imports("d", lib) == set()  # a module that does not exist is no file to track


def test_closure_lists_every_file_reached(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    names = [p.relative_to(lib).as_posix() for p in sources.closure(["a"], lib)]
    assert names == ["a.py", "b.py", "c.py", "d.py", "pkg/__init__.py", "pkg/inner.py"]
    assert sources.closure(["c"], lib) == [lib / "c.py"]
    assert sources.module_files("nothing", lib) == []


def test_script_imports_name_the_library_modules_a_script_uses(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("import tdann.video\nfrom tdann import figures, naming\nfrom tdann.provenance import step\n"
                      "import numpy\n")
    assert sources.script_imports(script) == {"video", "figures", "naming", "provenance"}


def test_the_real_library_resolves_a_package_module() -> None:
    files = sources.module_files("training")
    assert files and all(f.suffix == ".py" for f in files)
