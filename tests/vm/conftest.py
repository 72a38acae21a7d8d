"""The ipvs_vm fixture: one booted IPVS guest per test module, skipped with a visible reason
where it cannot run; the guest console is shown for every failed test that used it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Vm, VmUnavailable, boot_vm


def _boot(workdir: Path) -> Vm:
    try:
        return boot_vm(workdir)
    except VmUnavailable as exc:
        pytest.skip(f"IPVS VM unavailable: {exc}")


@pytest.fixture(scope="module")
def ipvs_vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    """The module's shared guest."""
    vm = _boot(tmp_path_factory.mktemp("ipvs-vm"))
    yield vm
    vm.close()


@pytest.fixture
def fresh_vm(tmp_path: Path) -> Iterator[Vm]:
    """A guest of the test's own (about 5 s more), for tests that break or kill it."""
    vm = _boot(tmp_path)
    yield vm
    vm.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Vm):
                title = f"guest console (tail; full log {value.console_path})"
                report.sections.append((title, value.console_tail() or "(empty)"))
    return report
