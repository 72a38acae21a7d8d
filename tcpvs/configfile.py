"""Reading the config file named by `tcpvsadm -f` and `tcpvsd -f`: both say the same thing
about a file that cannot be read or is not UTF-8 text."""

from __future__ import annotations

from tcpvs.errors import ConfigError, UnreadableConfig


def read_config_file(path: str) -> str:
    """The text of `path`; UnreadableConfig when it cannot be read, ConfigError
    (`path:line: not UTF-8 text`) when it is not text."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise UnreadableConfig(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(path, line, "not UTF-8 text") from None
