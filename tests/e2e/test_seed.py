"""The seed README's tcpvsadm session, command for command, against a real tcpvsd."""

from __future__ import annotations

from tests.support.client import curl
from tests.support.limits import default_maxclients


def test_seed_readme_sequence(daemon, backends, tmp_path):
    r1, r2, r3 = backends("r1", "r2", "r3")
    d = daemon()
    d.ok("-A", "-i", "http", "-s", "http")
    for r in (r1, r2, r3):
        d.ok("-a", "-i", "http", "-r", r.address)
    d.ok("--add-rule", "-i", "http", "--pattern=/images/.*", "-r", r1.address)
    d.ok("--add-rule", "-i", "http", "--pattern=/html/.*", "-r", r2.address)
    d.ok("--add-rule", "-i", "http", "--pattern=.*", "-r", r3.address)
    listing = d.ok("-L", "-n")
    assert listing.splitlines()[1:] == [
        "Virtual http {",
        "    listen = 0.0.0.0:8080",
        "    scheduler = http",
        "    startservers = 8",
        f"    maxclients = {default_maxclients(d.proc.pid)}",  # from tcpvsd's own limit
        "    minspareservers = 6",
        "    maxspareservers = 18",
        f"    server = {r1.address} 1",
        f"    server = {r2.address} 1",
        f"    server = {r3.address} 1",
        f'    rule = pattern "/images/.*" use server {r1.address}',
        f'    rule = pattern "/html/.*" use server {r2.address}',
        f'    rule = pattern ".*" use server {r3.address}',
        "}",
    ]
    assert listing.startswith("TCP Virtual Server version ")
    assert d.ok("--list")  # names resolved: still a listing
    config = tmp_path / "tcpvs.conf"
    config.write_text(listing)
    d.ok("-f", str(config))
    assert d.ok("-L", "-n") == listing
    d.ok("-F")
    assert d.ok("-L", "-n").splitlines() == [listing.splitlines()[0]]
    for command in ("--start", "--stop"):
        done = d.adm(command, "-i", "http")
        assert (done.returncode, done.stderr.strip()) == (1, "No such service")

    # The same table from the saved file, started: requests land where the rules say.
    d.ok("-f", str(config))
    d.ok("--start", "-i", "http")
    for path, name in (("/images/logo.png", "r1"), ("/html/index.html", "r2"), ("/cgi/x", "r3")):
        out = curl("-i", f"http://127.0.0.1:8080{path}")
        assert out.returncode == 0, out.stderr
        assert f"X-Backend: {name}" in out.stdout
    d.ok("--stop", "-i", "http")
    assert curl("http://127.0.0.1:8080/").returncode != 0  # no longer listening
