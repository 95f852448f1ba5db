"""The compiled modules must really be loaded: a silent fallback to the twins would hide a broken build."""

import os

import pyvoip_fast
from pyvoip_fast import _compat


def test_extensions_loaded() -> None:
    if os.environ.get("PYVOIP_FAST_NO_EXTENSIONS"):
        assert pyvoip_fast.IMPLEMENTATION == "python"
        return
    assert _compat.MISSING_EXTENSIONS == []
    assert pyvoip_fast.IMPLEMENTATION == "cython"


def test_each_compiled_module_lives_in_its_layer_beside_its_twin() -> None:
    """setup.py builds ext/<name>.pyx into the layer that _compat loads it from; both read the same table."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    tree = ast.parse((root / "setup.py").read_text(encoding="utf-8"))
    layer = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "LAYER"
    )
    assert {f"_{stem}": where for stem, where in layer.items()} == _compat.EXTENSION_MODULES
    assert sorted(p.stem for p in (root / "ext").glob("*.pyx")) == sorted(layer)
    for compiled, where in _compat.EXTENSION_MODULES.items():
        twin = _compat.module_for(compiled, "python")
        assert twin.__name__ == f"pyvoip_fast.{where}.{compiled}_py"
        if not _compat.NO_EXTENSIONS:
            assert _compat.module_for(compiled, "cython").__name__ == f"pyvoip_fast.{where}.{compiled}"
