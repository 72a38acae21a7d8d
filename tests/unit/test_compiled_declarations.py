"""Every compiled module's .pxd agrees with its .py: the classes, their fields and their methods.

Cython compiles the .py typed by the .pxd, and a mismatch shows only in the compiled build
(an attribute set in __init__ but not declared is an AttributeError at run time; a method
declared but renamed in the source does not compile). This reads both files and fails on any
difference, in either build."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tcpvs.compiled import COMPILED

ROOT = Path(__file__).resolve().parents[2]
CLASS = re.compile(r"^cdef class (\w+)(?:\((\w+)\))?:?\s*$")
FIELD = re.compile(r"^\s+cdef (?:public |readonly )?[\w. ]+? (\w+)\s*(?:#.*)?$")
METHOD = re.compile(r"^\s+(?:cdef|cpdef) [\w. ]*?\b(\w+)\(")


def pxd_classes(path: Path) -> dict[str, tuple[str | None, set[str], set[str]]]:
    """class -> (base, fields, methods) as the .pxd declares them."""
    classes: dict[str, tuple[str | None, set[str], set[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("cdef class "):
            found = CLASS.match(line)
            assert found, f"{path}: cannot read {line!r}"
            current = found.group(1)
            classes[current] = (found.group(2), set(), set())
        elif current is not None and line.startswith(" "):
            if method := METHOD.match(line):
                classes[current][2].add(method.group(1))
            elif field := FIELD.match(line):
                classes[current][1].add(field.group(1))
        elif line and not line.startswith((" ", "#", "@")):
            current = None
    return classes


def py_classes(path: Path) -> dict[str, tuple[list[str], set[str], set[str]]]:
    """class -> (bases, attributes set or annotated in __init__ (or listed in __slots__),
    methods)."""
    classes = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
        functions = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
        methods = set(functions)
        fields = set()
        for f in initialisers(functions):
            for sub in ast.walk(f):
                targets = []
                if isinstance(sub, ast.Assign):
                    targets = sub.targets
                elif isinstance(sub, ast.AnnAssign):
                    targets = [sub.target]
                for target in targets:
                    for t in ast.walk(target):
                        if (
                            isinstance(t, ast.Attribute)
                            and isinstance(t.value, ast.Name)
                            and t.value.id == "self"
                        ):
                            fields.add(t.attr)
        for f in node.body:  # a class made by __new__ (no __init__) lists its fields here
            if isinstance(f, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in f.targets
            ):
                fields |= set(ast.literal_eval(f.value))
        classes[node.name] = (bases, fields, methods)
    return classes


def initialisers(functions: dict[str, ast.FunctionDef]) -> list[ast.FunctionDef]:
    """__init__ and the methods it calls on self (a reset() that __init__ shares)."""
    init = functions.get("__init__")
    if init is None:
        return []
    called = [
        functions[n.func.attr]
        for n in ast.walk(init)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "self"
        and n.func.attr in functions
    ]
    return [init, *called]


@pytest.mark.parametrize("module", COMPILED)
def test_the_pxd_declares_what_the_source_defines(module):
    stem = ROOT / Path(*module.split("."))
    declared = pxd_classes(stem.with_suffix(".pxd"))
    defined = py_classes(stem.with_suffix(".py"))
    for name, (base, fields, methods) in declared.items():
        assert name in defined, f"{module}: {name} declared in the .pxd, not defined"
        bases, assigned, functions = defined[name]
        if base is not None:
            assert bases == [base], f"{module}.{name}: based on {bases} in .py, {base} in .pxd"
        missing = methods - functions
        assert not missing, f"{module}.{name}: declared, not defined: {sorted(missing)}"
        # fields a class sets in __init__ are its own or its base's; declared ones exist
        inherited = set().union(*(all_fields(b) for b in bases))
        undeclared = assigned - fields - inherited
        assert not undeclared, f"{module}.{name}: set in __init__, not declared: {undeclared}"
        unused = fields - assigned
        assert not unused, f"{module}.{name}: declared, never set in __init__: {unused}"
    for name, (_, assigned, _) in defined.items():
        if name not in declared and assigned:
            pytest.fail(f"{module}: class {name} has fields but no cdef class in the .pxd")


def all_fields(class_name: str) -> set[str]:
    """The declared fields of a compiled class and its bases, wherever it is declared."""
    for module in COMPILED:
        pxd = ROOT / Path(*module.split(".")).with_suffix(".pxd")
        classes = pxd_classes(pxd)
        if class_name in classes:
            base, fields, _ = classes[class_name]
            return fields | (all_fields(base) if base else set())
    return set()


def test_the_check_sees_a_disagreement(tmp_path):
    """The reader is not blind: an undeclared field and a missing method are found."""
    (tmp_path / "m.pxd").write_text("cdef class A:\n    cdef public int x\n    cpdef go(self)\n")
    (tmp_path / "m.py").write_text(
        "class A:\n    def __init__(self):\n        self.x = 1\n        self.y = 2\n"
    )
    declared = pxd_classes(tmp_path / "m.pxd")["A"]
    defined = py_classes(tmp_path / "m.py")["A"]
    assert defined[1] - declared[1] == {"y"} and declared[2] - defined[2] == {"go"}
