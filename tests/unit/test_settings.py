"""Per-service settings without sockets: every value a client can send gets either the
setting's type or a ValueError saying what is wrong (never OverflowError or TypeError), and
maxclients defaults to what the open-files limit can serve (docs/config.md)."""

from __future__ import annotations

import contextlib
import math
import resource

import pytest

from tcpvs.errors import ConfigError, TableError
from tcpvs.table.config import parse_config
from tcpvs.table.listing import render_config, snapshot
from tcpvs.table.operations import Table
from tcpvs.table.settings import SETTINGS, check_setting, maxclients_for
from tests.support.limits import default_maxclients, documented_maxclients

HUGE = 10**400  # no float holds it


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("maxclients", math.inf, "maxclients must be between 1 and 1048576"),
        ("maxclients", -math.inf, "maxclients must be between 1 and 1048576"),
        ("maxclients", math.nan, "maxclients must be between 1 and 1048576"),
        ("maxclients", HUGE, "maxclients must be between 1 and 1048576"),
        ("maxclients", 1048577, "maxclients must be between 1 and 1048576"),
        ("maxclients", 0, "maxclients must be between 1 and 1048576"),
        ("maxclients", 2.5, "maxclients must be a whole number"),
        ("maxclients", True, "maxclients must be a number"),
        ("maxclients", None, "maxclients must be a number"),
        ("maxclients", [1], "maxclients must be a number"),
        ("maxclients", {"a": 1}, "maxclients must be a number"),
        ("max_head_size", math.inf, "max_head_size must be between 1024 and 1048576"),
        ("startservers", -math.inf, "startservers must be between 1 and 65535"),
        ("connect_timeout", HUGE, "connect_timeout must be between 0.001 and 3600"),
        ("connect_timeout", -HUGE, "connect_timeout must be between 0.001 and 3600"),
        ("client_timeout", math.nan, "client_timeout must be between 0.001 and 3600"),
        ("client_timeout", "nan", "client_timeout must be between 0.001 and 3600"),
        ("server_timeout", "1e999", "server_timeout must be between 0.001 and 86400"),
        ("fail_timeout", math.inf, "fail_timeout must be between 0 and 3600"),
        ("keepalive_timeout", False, "keepalive_timeout must be a number"),
        ("forwardfor", math.inf, "forwardfor must be on or off"),
        ("forwardfor", math.nan, "forwardfor must be on or off"),
        ("forwardfor", 2, "forwardfor must be on or off"),
        ("forwardfor", 1.0, "forwardfor must be on or off"),
        ("forwardfor", "maybe", "forwardfor must be on or off"),
        ("forwardfor", None, "forwardfor must be on or off"),
    ],
)
def test_bad_values_raise_value_error_with_a_clear_message(name, value, message):
    with pytest.raises(ValueError) as info:
        check_setting(name, value)
    assert str(info.value) == message


HOSTILE = [math.inf, -math.inf, math.nan, HUGE, -HUGE, 1e308, -1, 0, 0.5, True, None, [], {}]
HOSTILE += ["", "inf", "-inf", "nan", "1e999", "9" * 5000, "1.5", "0x10", "on", "\x00"]


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda s: s.name)
def test_every_setting_refuses_hostile_values_only_with_value_error(spec):
    for value in HOSTILE:
        try:
            checked = check_setting(spec.name, value)
        except ValueError:
            continue
        assert type(checked) is spec.kind, (value, checked)
        if spec.kind is not bool:
            assert spec.low <= checked <= spec.high, (value, checked)


def test_good_values_convert_to_the_settings_type():
    assert check_setting("maxclients", 1048576) == 1048576
    assert check_setting("maxclients", "256") == 256
    assert (
        check_setting("maxclients", 10.0) == 10 and type(check_setting("maxclients", 10.0)) is int
    )
    assert check_setting("connect_timeout", 2) == 2.0
    assert type(check_setting("connect_timeout", 2)) is float
    assert check_setting("connect_timeout", "0.5") == 0.5
    assert [check_setting("forwardfor", v) for v in (True, False, 1, 0, "OFF", "yes")] == [
        True,
        False,
        True,
        False,
        False,
        True,
    ]


def test_table_refuses_overflowing_values_with_its_message():
    table = Table()
    table.add_service("web")
    with pytest.raises(TableError) as info:
        table.edit_service("web", maxclients=math.inf)
    assert str(info.value) == (
        "illegal maxclients specified (maxclients must be between 1 and 1048576)"
    )
    with pytest.raises(TableError) as info:
        table.add_service("other", connect_timeout=HUGE)
    assert "connect_timeout must be between 0.001 and 3600" in str(info.value)
    assert list(table.services) == ["web"]


# -- the maxclients default ----------------------------------------------------------------


def test_maxclients_formula():
    assert maxclients_for(0) == 256  # never below KTCPVS's old default
    assert maxclients_for(576) == 256
    assert maxclients_for(1024) == 480  # (1024 - 64) // 2
    assert maxclients_for(20000) == 9968
    assert maxclients_for(1 << 20) == 524256  # systemd's LimitNOFILE=1048576 in configs/
    assert maxclients_for(1 << 30) == 1 << 20  # the setting's ceiling
    for nofile in (0, 300, 577, 578, 1024, 4096, 65536, 1 << 20, 1 << 21, 1 << 30):
        assert maxclients_for(nofile) == documented_maxclients(nofile)


@contextlib.contextmanager
def soft_nofile_limit(soft: int):
    """This process's soft RLIMIT_NOFILE set to `soft` for a while (restored after)."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def maxclients_of_new_service() -> int:
    table = Table()
    return table.add_service("web").settings.maxclients


def test_default_is_read_when_a_service_is_made_not_at_import():
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1024:
        pytest.skip("the hard open-files limit is below 1024")
    assert maxclients_of_new_service() == default_maxclients()
    with soft_nofile_limit(1024):
        assert maxclients_of_new_service() == 480
        table = Table()
        service = table.add_service("web")
        table.add_service("old", port=8081, maxclients=256)  # two services, two ports
    with soft_nofile_limit(300):
        assert maxclients_of_new_service() == 256
    # A service keeps the value it was made with; -L prints it, and it loads back as is.
    assert service.settings.maxclients == 480
    text = render_config(snapshot(table), header=False)
    assert text.count("    maxclients = 480\n") == 1
    assert text.count("    maxclients = 256\n") == 1
    rebuilt = parse_config(text, "listing.conf")
    assert rebuilt.services["web"].settings.maxclients == 480
    assert rebuilt.services["old"].settings.maxclients == 256


def test_an_unlimited_open_files_limit_gives_the_ceiling(monkeypatch):
    # RLIMIT_NOFILE cannot really be unlimited on Linux; the branch guards other systems.
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert maxclients_of_new_service() == 1 << 20


def test_config_values_are_taken_as_written():
    text = "Virtual a {\n    maxclients = 256\n}\nVirtual b {\n    listen = 0.0.0.0:8081\n}\n"
    table = parse_config(text, "t.conf")
    assert table.services["a"].settings.maxclients == 256
    assert table.services["b"].settings.maxclients == default_maxclients()
    for bad, message in (
        ("1048577", "maxclients must be between 1 and 1048576"),
        ("1e999", "invalid literal for int() with base 10: '1e999'"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_config(f"Virtual a {{\n    maxclients = {bad}\n}}\n", "t.conf")
        assert str(info.value) == f"t.conf:2: illegal maxclients '{bad}' ({message})"
