"""An immutable backend URL: parsed once where it enters the library.

``scheme+driver://user:password@host:port,host2:port2/path?a=b`` → a
:class:`BackendURL`.  The scheme names the backend (the entry point);
``+driver`` is kept for backends that use it (SQLAlchemy).  The password is
never shown: ``repr``/``str`` and :meth:`BackendURL.render` mask it.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, NamedTuple

from .exceptions import ConfigurationError

__all__ = ["BackendURL", "make_url", "mask_password"]

_MASK = "***"


class BackendURL(NamedTuple):
    backend: str
    driver: str | None
    username: str | None
    password: str | None
    hosts: tuple[tuple[str, int | None], ...]
    path: str
    query: tuple[tuple[str, str], ...]
    raw: str

    @property
    def host(self) -> str | None:
        return self.hosts[0][0] if self.hosts else None

    @property
    def port(self) -> int | None:
        return self.hosts[0][1] if self.hosts else None

    def set(self, **changes: Any) -> BackendURL:
        """A copy with ``changes`` applied (the raw string is re-rendered)."""
        url = self._replace(**changes)
        return url._replace(raw=url.render(hide_password=False))

    def render(self, hide_password: bool = True) -> str:
        scheme = self.backend + (f"+{self.driver}" if self.driver else "")
        netloc = ""
        if self.username is not None:
            netloc = urllib.parse.quote(self.username, safe="")
            if self.password is not None:
                pw = _MASK if hide_password else urllib.parse.quote(self.password, safe="")
                netloc += f":{pw}"
            netloc += "@"
        netloc += ",".join(h if p is None else f"{h}:{p}" for h, p in self.hosts)
        query = urllib.parse.urlencode(self.query)
        return f"{scheme}://{netloc}{self.path}" + (f"?{query}" if query else "")

    def to_conf(self) -> dict[str, Any]:
        """The configuration dict a backend receives for this URL."""
        conf: dict[str, Any] = {"connection": self.raw}
        if self.hosts:
            conf["host"] = self.host
            if self.port is not None:
                conf["port"] = self.port
            if len(self.hosts) > 1:
                conf["hosts"] = ",".join(h if p is None else f"{h}:{p}" for h, p in self.hosts)
        if self.path:
            conf["path"] = self.path
        if self.username is not None:
            conf["username"] = self.username
        if self.password is not None:
            conf["password"] = self.password
        if self.driver:
            conf["driver"] = self.driver
        conf.update(self.query)
        return conf

    def __repr__(self) -> str:
        return f"BackendURL({self.render()!r})"

    def __str__(self) -> str:
        return self.render()


def make_url(value: str | BackendURL) -> BackendURL:
    """Parse a backend URI; ConfigurationError (password masked) if it is not one."""
    if isinstance(value, BackendURL):
        return value
    if not isinstance(value, str):
        raise TypeError(f"a backend URI must be a string, not {type(value).__name__}")
    parts = urllib.parse.urlsplit(value)
    if not parts.scheme or "://" not in value:
        raise ConfigurationError(f"{mask_password(value)!r} is not a backend URI "
                                 f"(expected scheme://..., e.g. 'memory://' or 'sqlite:///x.db')")
    backend, _, driver = parts.scheme.partition("+")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if userinfo or "@" in parts.netloc:
        user, has_pw, pw = userinfo.partition(":")
        username = urllib.parse.unquote(user)
        password = urllib.parse.unquote(pw) if has_pw else None
    hosts = []
    for item in filter(None, hostlist.split(",")):
        # One host at a time through urlsplit, so IPv6 brackets and ports parse.
        one = urllib.parse.urlsplit(f"//{item}")
        try:
            port = one.port
        except ValueError as err:
            raise ConfigurationError(f"bad port in {mask_password(value)!r}: {err}") from None
        hosts.append((one.hostname or "", port))
    query = tuple(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return BackendURL(backend=backend.lower(), driver=driver or None, username=username,
                      password=password, hosts=tuple(hosts),
                      path=urllib.parse.unquote(parts.path), query=query, raw=value)


def mask_password(text: str) -> str:
    """Replace the password of any ``scheme://user:password@`` in ``text``."""
    out, start = [], 0
    while True:
        i = text.find("://", start)
        if i < 0:
            out.append(text[start:])
            return "".join(out)
        at = text.find("@", i)
        end = min((j for j in (text.find(c, i + 3) for c in "/?# ") if j >= 0), default=len(text))
        if 0 <= at < end:
            colon = text.find(":", i + 3, at)
            if colon >= 0:
                out.append(text[start:colon + 1] + _MASK)
                start = at
                continue
        out.append(text[start:i + 3])
        start = i + 3
