"""An immutable backend URL: parsed once where it enters the library.

``scheme+driver://user:password@host:port,host2:port2/path?a=b`` → a
:class:`BackendURL`.  The scheme names the backend (the entry point);
``+driver`` is kept for backends that use it (SQLAlchemy).  The password is
never shown: ``repr``/``str`` and :meth:`BackendURL.render` mask it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from typing import Any, NamedTuple

from ..exceptions import ConfigurationError

__all__ = ["BackendURL", "authority", "make_url", "mask_password"]

_MASK = "***"
_WHITESPACE = re.compile(r"\s")


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
    netloc = authority(value)
    if any(c.isspace() or not c.isprintable() for c in netloc):
        # Not echoed: a mask cannot tell where such a password ends in a message.
        raise ConfigurationError(f"the user, password or host of a {parts.scheme}:// URI "
                                 f"holds a space or control character: percent-encode it "
                                 f"(a space is %20)")
    rest = value[value.find("://") + 3 + len(netloc):].partition("?")[0]
    if netloc and "@" not in netloc and "@" in rest.partition("#")[0]:
        # "user:pa/ss@host": a password holding '/' would otherwise read as host:port + path.
        raise ConfigurationError(f"{mask_password(value)!r} is ambiguous: an '@' after the "
                                 f"host; percent-encode '/', '?', '#' and '@' in a password "
                                 f"(%2F, %3F, %23, %40) and '@' in a path (%40)")
    userinfo, _, hostlist = netloc.rpartition("@")
    username = password = None
    if "@" in netloc:
        user, has_pw, pw = userinfo.partition(":")
        username = urllib.parse.unquote(user)
        password = urllib.parse.unquote(pw) if has_pw else None
    hosts = []
    for item in filter(None, hostlist.split(",")):
        # One host at a time through urlsplit, so IPv6 brackets and ports parse.
        one = urllib.parse.urlsplit(f"//{item}")
        try:
            port = one.port
        except ValueError:
            # Not the ValueError's text: it quotes the "port", which may be a password.
            raise ConfigurationError(
                f"bad port in {mask_password(value)!r}: not a number (percent-encode '/', '?', "
                f"'#' and '@' in a password: %2F, %3F, %23, %40)") from None
        hosts.append((one.hostname or "", port))
    query = tuple(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return BackendURL(backend=backend.lower(), driver=driver or None, username=username,
                      password=password, hosts=tuple(hosts),
                      path=urllib.parse.unquote(parts.path), query=query, raw=value)


def authority(uri: str) -> str:
    """The ``user:password@hosts`` part of ``uri``: up to the first ``/``, ``?`` or ``#``.

    The parser and :func:`mask_password` both split it at its *last* ``@``
    and the user from the password at the first ``:``, so they agree on
    what the password is.
    """
    start = uri.find("://") + 3
    ends = [j for j in (uri.find(c, start) for c in "/?#") if j >= 0]
    return uri[start:min(ends, default=len(uri))]


def mask_password(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the password of every ``scheme://user:password@…`` masked.

    Text may hold a URI anywhere (an error message, a traceback), so the mask
    takes no chances: from ``://`` to the next whitespace, everything between
    the first ``:`` and the *last* ``@`` is masked.  That covers what
    :func:`make_url` calls the password (which never holds whitespace) and
    anything a laxer parser might, such as a password with an unencoded ``/``.
    ``secrets`` (e.g. passwords given separately) are masked wherever they occur,
    raw or percent-encoded.
    """
    out, start = [], 0
    while True:
        i = text.find("://", start)
        if i < 0:
            out.append(text[start:])
            break
        token_start = i + 3
        match = _WHITESPACE.search(text, token_start)
        token = text[token_start:match.start() if match else len(text)]
        at = token.rfind("@")
        colon = token.find(":", 0, at) if at > 0 and not token.startswith("/") else -1
        if colon >= 0:
            out.append(text[start:token_start + colon + 1] + _MASK)
            start = token_start + at
        else:
            out.append(text[start:token_start])
            start = token_start
    masked = "".join(out)
    for secret in secrets:
        if secret:
            for form in {secret, urllib.parse.quote(secret, safe=""),
                         urllib.parse.quote_plus(secret, safe="")}:
                masked = masked.replace(form, _MASK)
    return masked
