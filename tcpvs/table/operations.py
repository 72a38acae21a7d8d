"""The service table and its operations, with KTCPVS's messages. No I/O.

Every method either applies its change completely or raises TableError and changes nothing.
Order is creation order everywhere (services, servers, rules), and rules whose pattern is a
default pattern (`.*`, `^/.*`) stay behind all others, so `-L` output loaded with `-f`
rebuilds the same table.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import regex

from tcpvs.errors import ListenConflict, TableError
from tcpvs.health.spec import CheckSpec, parse_check
from tcpvs.sched.registry import load_scheduler
from tcpvs.table.addr import Address, AddressError, listens_overlap, parse_address
from tcpvs.table.model import (
    ADMIN_STATES,
    DEFAULT_PORT,
    DEFAULT_SCHEDULER,
    DEFAULT_SERVER_PORT,
    MAX_MATCH,
    MAX_WEIGHT,
    RealServer,
    Rule,
    Service,
    SniRule,
    compile_pattern,
)
from tcpvs.table.settings import SETTINGS_BY_NAME, Settings, check_setting
from tcpvs.tls.certs import Certificate, CertificateError, CertStore, load_certificate
from tcpvs.tls.settings import DEFAULT_TLS_MIN, TLS_VERSIONS
from tcpvs.tls.upstream import UpstreamTls

AnyRule = TypeVar("AnyRule", Rule, SniRule)
IDENT_RE = regex.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _address(value: str | Address, default_port: int | None, message: str) -> Address:
    if isinstance(value, Address):
        return value
    try:
        return parse_address(value, default_port)
    except AddressError as exc:
        raise TableError(exc.explain(message)) from None


def _weight(weight: int) -> int:
    if not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise TableError("illegal weight specified")
    return weight


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    checked = {}
    for name, value in settings.items():
        if name not in SETTINGS_BY_NAME:
            raise TableError(f"unknown setting '{name}'")
        try:
            checked[name] = check_setting(name, value)
        except ValueError as exc:
            raise TableError(f"illegal {name} specified ({exc})") from None
    return checked


def _check(spec: str | CheckSpec | None) -> CheckSpec | None:
    """A service's check from its text (`http GET /healthz ...`, `none`)."""
    if spec is None or isinstance(spec, CheckSpec):
        return spec
    try:
        return parse_check(spec)
    except ValueError as exc:
        raise TableError(f"illegal check '{spec}': {exc}") from None


SERVICE_CHECK = "default"  # a server's --check that hands it back to its service's check


def _own_check(spec: str | CheckSpec) -> tuple[bool, CheckSpec | None]:
    """A server's (own_check, check) from its `--check`: a spec, `none` (not checked) or
    `default` (its service's check)."""
    if isinstance(spec, str) and spec.strip().lower() == SERVICE_CHECK:
        return False, None
    return True, _check(spec)


TlsArgument = Sequence[str | Certificate] | None


def _certs(tls: TlsArgument, tls_min: str | None, current: CertStore | None) -> CertStore | None:
    """A service's certificates from `tls` (paths or loaded certificates; none: plain TCP;
    None: the current ones) and `tls_min` (None: the current one, else 1.2)."""
    if tls_min is not None and tls_min not in TLS_VERSIONS:
        raise TableError(f"illegal tls_min '{tls_min}' (1.2 or 1.3)")
    if isinstance(tls, str):
        raise TableError("tls: a list of certificate files")
    if tls is None:
        if current is None or tls_min is None or tls_min == current.tls_min:
            return current
        tls = current.paths  # loaded anew: the running handshakes keep their contexts
    minimum = tls_min or (current.tls_min if current is not None else DEFAULT_TLS_MIN)
    certificates = []
    for item in tls:
        if isinstance(item, Certificate):
            certificates.append(item)
            continue
        try:
            certificates.append(load_certificate(item))
        except CertificateError as exc:
            raise TableError(f"illegal tls: {exc}") from None
    return CertStore(certificates, minimum) if certificates else None


_TLS_NAME = regex.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")


def _server_tls(tls: bool | str, server: str | Address) -> tuple[bool, str | None]:
    """(reached over TLS, the name to ask for and verify) of a server's `tls`: False or `off`,
    True or `on` (the name it was written with, if any), or the name itself."""
    if tls is False or tls == "off":
        return False, None
    if tls is True or tls == "on":
        return True, written_name(server)
    if not isinstance(tls, str) or not _TLS_NAME.fullmatch(tls):
        raise TableError(f"illegal tls name '{tls}'")
    return True, tls


def written_name(server: str | Address) -> str | None:
    """The host name a server was written with (`api.internal:443`), None for an address."""
    if not isinstance(server, str) or server.startswith("["):
        return None
    host = server.rpartition(":")[0] or server
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def _upstream(ca: str | None, verify: bool | None, current: UpstreamTls | None) -> UpstreamTls:
    """How a service reaches its TLS servers, from `tls_ca` ("": the system's store) and
    `tls_verify` (None: as it was, else on)."""
    ca_file = current.ca_file if current is not None else None
    if ca is not None:
        ca_file = ca or None
    if verify is None:
        verify = current.verify if current is not None else True
    try:
        return UpstreamTls(ca_file, verify)
    except CertificateError as exc:
        raise TableError(f"illegal tls_ca: {exc}") from None


REDIRECT_HTTPS = "https"


def _redirect(value: str | Address) -> tuple[Address | None, bool]:
    """(the redirect server, whether every request is sent to https instead) of `redirect`:
    an address (KTCPVS's last-resort server), `https`, or "" for neither."""
    if value == "":
        return None, False
    if isinstance(value, str) and value.lower() == REDIRECT_HTTPS:
        return None, True
    return _address(value, 80, "illegal redirect address specified"), False


def _listen(current: Address | None, listen: str | Address | None, port: int | None) -> Address:
    """The listen address from `-l host[:port]` and `-P port` (the -l port wins)."""
    base = current or Address("0.0.0.0", DEFAULT_PORT)
    if port is not None:
        if not isinstance(port, int) or not 0 < port < 65535:
            raise TableError("illegal server port specified")
        base = Address(base.host, port)
    if listen is None:
        return base
    return _address(listen, base.port, "illegal address:port specified")


class Table:
    """All virtual services, by ident, in creation order."""

    def __init__(self) -> None:
        self.services: dict[str, Service] = {}

    def service(self, ident: str) -> Service:
        try:
            return self.services[ident]
        except KeyError:
            raise TableError("No such service") from None

    def _service_for_server(self, ident: str) -> Service:
        try:
            return self.services[ident]
        except KeyError:
            raise TableError("Service not defined") from None

    def _check_listen(self, ident: str, address: Address) -> None:
        """Refuse an address another service listens on (or overlaps through a wildcard): the
        second would fail only at --start, or with SO_REUSEPORT share the first one's port."""
        for other in self.services.values():
            if other.ident != ident and listens_overlap(other.listen, address):
                where = "" if other.listen == address else f" on {other.listen}"
                message = f"service {ident} listens on {address} like service {other.ident}"
                raise ListenConflict(message + where, other.ident)

    # -- services -------------------------------------------------------------------------

    def add_service(
        self,
        ident: str,
        *,
        listen: str | Address | None = None,
        port: int | None = None,
        scheduler: str | None = None,
        redirect: str | Address | None = None,
        check: str | CheckSpec | None = None,
        tls: TlsArgument = None,
        tls_min: str | None = None,
        tls_ca: str | None = None,
        tls_verify: bool | None = None,
        **settings: Any,
    ) -> Service:
        if not isinstance(ident, str) or not IDENT_RE.fullmatch(ident):
            raise TableError("illegal ident specified")
        if ident in self.services:
            raise TableError("Service already exists")
        address = _listen(None, listen, port)
        sched_name = scheduler or DEFAULT_SCHEDULER
        instance = load_scheduler(sched_name)
        service = Service(ident, address, sched_name, instance)
        service.settings = Settings(**_settings(settings))
        service.check = _check(check)
        service.certs = _certs(tls, tls_min, None)
        if tls_ca is not None or tls_verify is not None:
            service.upstream = _upstream(tls_ca, tls_verify, None)
        if redirect is not None:
            service.redirect, service.redirect_https = _redirect(redirect)
        self._check_listen(ident, address)
        self.services[ident] = service
        return service

    def edit_service(
        self,
        ident: str,
        *,
        listen: str | Address | None = None,
        port: int | None = None,
        scheduler: str | None = None,
        redirect: str | Address | None = None,
        check: str | CheckSpec | None = None,
        tls: TlsArgument = None,
        tls_min: str | None = None,
        tls_ca: str | None = None,
        tls_verify: bool | None = None,
        **settings: Any,
    ) -> Service:
        """Change only what is given (KTCPVS reset everything else to defaults; we don't).
        `tls`: the certificate files (an empty list: plain TCP again)."""
        service = self.service(ident)
        address = _listen(service.listen, listen, port)
        checked = _settings(settings)
        new_check = service.check if check is None else _check(check)
        new_certs = _certs(tls, tls_min, service.certs)
        new_upstream = service.upstream
        if tls_ca is not None or tls_verify is not None:
            new_upstream = _upstream(tls_ca, tls_verify, service.upstream)
        if new_certs is not None and service.sni_rules:
            raise TableError("a service that ends TLS (tls =) has no sni rules: delete them first")
        new_redirect = service.redirect, service.redirect_https
        if redirect is not None:
            new_redirect = _redirect(redirect)
        new_scheduler = None
        if scheduler is not None and scheduler != service.scheduler_name:
            new_scheduler = scheduler, load_scheduler(scheduler)
        self._check_listen(ident, address)
        # Everything validated: apply.
        service.listen = address
        service.settings = service.settings.replace(**checked)
        service.redirect, service.redirect_https = new_redirect
        service.check = new_check
        service.certs = new_certs
        service.upstream = new_upstream
        if new_scheduler is not None:
            service.scheduler_name, service.scheduler = new_scheduler
            for real in service.servers:
                service.scheduler.server_added(real)
        return service

    def delete_service(self, ident: str) -> Service:
        service = self.service(ident)
        del self.services[ident]
        return service

    def flush(self) -> list[Service]:
        removed = list(self.services.values())
        self.services.clear()
        return removed

    # -- real servers ---------------------------------------------------------------------

    def add_server(
        self,
        ident: str,
        server: str | Address,
        weight: int = 1,
        check: str | CheckSpec | None = None,
        tls: bool | str = False,
    ) -> RealServer:
        """Add a real server; `check`: its own check (else its service's), as edit_server;
        `tls`: reached over TLS (a string: the name to ask for and verify, else the host
        `server` was written with)."""
        service = self._service_for_server(ident)
        address = _address(server, DEFAULT_SERVER_PORT, "illegal address:port specified")
        weight = _weight(weight)
        own = (False, None) if check is None else _own_check(check)
        reached = _server_tls(tls, server)
        if service.find_server(address) is not None:
            raise TableError("Destination already exists")
        real = RealServer(address, weight)
        real.own_check, real.check = own
        self._reach(service, real, reached)
        service.servers.append(real)
        service.scheduler.server_added(real)
        return real

    def _reach(self, service: Service, real: RealServer, reached: tuple[bool, str | None]) -> None:
        real.tls, real.tls_name = reached
        if real.tls and service.upstream is None:
            service.upstream = _upstream(None, None, None)

    def _existing_server(self, service: Service, server: str | Address) -> RealServer:
        address = _address(server, DEFAULT_SERVER_PORT, "illegal address:port specified")
        real = service.find_server(address)
        if real is None:
            raise TableError("No such destination")
        return real

    def edit_server(
        self,
        ident: str,
        server: str | Address,
        weight: int | None = None,
        state: str | None = None,
        check: str | CheckSpec | None = None,
        tls: bool | str | None = None,
    ) -> RealServer:
        """Change a server's weight (KTCPVS's `-e` without `-w` sets 1), its administrative
        state (`ready`, `drain`, `maint`), its own check (a spec, `none`: not checked,
        `default`: its service's) and/or how it is reached (`tls`, as add_server's; `off`);
        with any of those the weight stays unless given."""
        service = self._service_for_server(ident)
        real = self._existing_server(service, server)
        if state is not None and state not in ADMIN_STATES:
            raise TableError(f"illegal state '{state}' (ready, drain or maint)")
        own = None if check is None else _own_check(check)
        reached = None if tls is None else _server_tls(tls, server)
        if weight is None and state is None and check is None and tls is None:
            weight = 1
        if weight is not None:
            real.set_weight(_weight(weight))
        if own is not None:
            real.own_check, real.check = own
        if reached is not None:
            self._reach(service, real, reached)
        if state is not None:
            real.admin = state
            real.update_state(time.time())
        service.scheduler.server_changed(real)
        return real

    def delete_server(self, ident: str, server: str | Address) -> RealServer:
        service = self._service_for_server(ident)
        real = self._existing_server(service, server)
        rules_of_service: list[Rule | SniRule] = [*service.rules, *service.sni_rules]
        patterns = [f"'{rule.pattern}'" for rule in rules_of_service if real in rule.servers]
        if patterns:
            rules = "rule" if len(patterns) == 1 else "rules"
            used = f"used by {rules} {', '.join(patterns)} of service {ident}"
            raise TableError(f"Destination is busy: {used}")
        service.servers.remove(real)
        service.scheduler.server_removed(real)
        return real

    # -- rules ----------------------------------------------------------------------------

    def add_rule(self, ident: str, pattern: str, server: str | Address, match: int = 0) -> Rule:
        """Send requests whose URI matches `pattern` to `server` (with the rule's others).

        Adding the same pattern again adds a server to that rule (hhttp hashes over them).
        """
        service = self.service(ident)
        if not isinstance(match, int) or not 0 <= match <= MAX_MATCH:
            raise TableError("illegal match number specified")
        if not pattern:
            raise TableError("illegal pattern specified")
        real = self._existing_server(service, server)
        rule = next((r for r in service.rules if r.pattern == pattern), None)
        if rule is not None:
            if real in rule.servers:
                raise TableError("Rule already exists")
            if rule.match != match:
                raise TableError(f"Rule exists with match {rule.match}")
            rule.servers.append(real)
            return rule
        try:
            compiled = compile_pattern(pattern)
        except ValueError as exc:
            raise TableError(str(exc).capitalize()) from None
        if compiled.groups < match:
            raise TableError(f"pattern has no sub-expression {match}")
        rule = Rule(pattern, match, [real], compiled)
        if rule.is_default:
            service.rules.append(rule)
        else:
            first_default = next((i for i, r in enumerate(service.rules) if r.is_default), None)
            service.rules.insert(
                len(service.rules) if first_default is None else first_default, rule
            )
        return rule

    def add_sni_rule(self, ident: str, pattern: str, server: str | Address) -> SniRule:
        """Send TLS connections whose SNI matches `pattern` to `server` (with the rule's
        others), the ClientHello passed on as it is (passthrough)."""
        service = self.service(ident)
        if service.certs is not None:
            raise TableError("sni rules pass TLS through: not in a service that ends it (tls =)")
        if not isinstance(pattern, str) or not pattern:
            raise TableError("illegal sni pattern specified")
        if not pattern.startswith("~"):
            pattern = pattern.lower()
        real = self._existing_server(service, server)
        rule = next((r for r in service.sni_rules if r.pattern == pattern), None)
        if rule is not None:
            if real in rule.servers:
                raise TableError("Rule already exists")
            rule.servers.append(real)
            return rule
        try:
            rule = SniRule(pattern, [real])
        except ValueError as exc:
            raise TableError(str(exc).capitalize()) from None
        service.sni_rules.append(rule)
        return rule

    def delete_sni_rule(self, ident: str, pattern: str, server: str | Address) -> None:
        service = self.service(ident)
        if not pattern.startswith("~"):
            pattern = pattern.lower()
        self._delete_from_rule(service, service.sni_rules, pattern, server)

    def delete_rule(self, ident: str, pattern: str, server: str | Address) -> None:
        service = self.service(ident)
        self._delete_from_rule(service, service.rules, pattern, server)

    def _delete_from_rule(
        self,
        service: Service,
        rules: list[AnyRule],
        pattern: str,
        server: str | Address,
    ) -> None:
        """Take `server` out of the rule of `pattern` (the rule goes with its last server)."""
        real = self._existing_server(service, server)
        rule = next((r for r in rules if r.pattern == pattern), None)
        if rule is None or real not in rule.servers:
            raise TableError("No such rule")
        rule.servers.remove(real)
        if not rule.servers:
            rules.remove(rule)
