"""``WALLETQL_DATABASE_URL``, parsed once and mapped onto asyncpg.

Hosted PostgreSQL providers hand out libpq URLs (``postgresql://`` or ``postgres://``, with
``?sslmode=…``). SQLAlchemy would read ``postgresql://`` as "use psycopg", and asyncpg
alone would fill gaps from ``PG*`` variables and ``~/.postgresql``; so the URL is parsed
here, and the SQLAlchemy engine, the LISTEN connection and Alembic all connect with the
same ``DatabaseUrl``. Stdlib only: the worker and the Lambda import this at start.

Error messages describe the problem and never repeat the URL or any of its values, so a
password (even one pasted in the wrong place) cannot reach a terminal or a log.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
PARAMETERS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
)
DEFAULT_PORT = 5432
EXAMPLE = "postgresql://user:password@host:5432/dbname"


class DatabaseUrlError(ValueError):
    """A URL walletql cannot use; the message never contains the URL or its values."""


@dataclass(frozen=True)
class DatabaseUrl:
    host: str
    port: int
    database: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sslmode: str = "prefer"
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    connect_timeout: int | None = None
    application_name: str | None = None
    # Built once at parse time, so unreadable certificate files stop the start, and every
    # connection of the process shares one context.
    ssl: ssl.SSLContext | str | bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ssl", ssl_argument(self))

    def __str__(self) -> str:
        return self.render()

    def render(self, *, hide_password: bool = True, scheme: str = "postgresql") -> str:
        """The URL as text; the password is ``***`` unless asked for."""
        auth = ""
        if self.user is not None:
            auth = quote(self.user, safe="")
            if self.password is not None:
                auth += ":" + ("***" if hide_password else quote(self.password, safe=""))
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = urlencode({name: value for name, value in self._parameters() if value})
        tail = f"?{query}" if query else ""
        return f"{scheme}://{auth}{host}:{self.port}/{quote(self.database, safe='')}{tail}"

    def _parameters(self) -> list[tuple[str, str | None]]:
        timeout = None if self.connect_timeout is None else str(self.connect_timeout)
        return [
            ("sslmode", self.sslmode),
            ("sslrootcert", self.sslrootcert),
            ("sslcert", self.sslcert),
            ("sslkey", self.sslkey),
            ("connect_timeout", timeout),
            ("application_name", self.application_name),
        ]

    def connect_args(self) -> dict[str, Any]:
        """asyncpg ``connect`` arguments beyond the address: SQLAlchemy's ``connect_args``."""
        args: dict[str, Any] = {"ssl": self.ssl}
        if self.connect_timeout is not None:
            # libpq: 0 waits forever, and anything under 2 seconds counts as 2.
            args["timeout"] = None if self.connect_timeout == 0 else max(self.connect_timeout, 2)
        if self.application_name is not None:
            args["server_settings"] = {"application_name": self.application_name}
        return args

    def asyncpg_kwargs(self) -> dict[str, Any]:
        """Everything ``asyncpg.connect(**…)`` needs (the LISTEN connection, the checks)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
            **self.connect_args(),
        }

    def sqlalchemy_url(self) -> URL:
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+asyncpg",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
        )

    def with_database(self, database: str) -> DatabaseUrl:
        """The same server and options, another database (tests make throwaway ones)."""
        return replace(self, database=database)


def as_database_url(url: DatabaseUrl | str) -> DatabaseUrl:
    return url if isinstance(url, DatabaseUrl) else parse_database_url(url)


def parse_database_url(url: str) -> DatabaseUrl:
    """Parse a libpq-style URL; raise ``DatabaseUrlError`` for anything walletql cannot use."""
    scheme, sep, _ = url.strip().partition("://")
    if not sep:
        raise DatabaseUrlError(f"not a database URL; expected {EXAMPLE}")
    if scheme.lower() not in SCHEMES:
        shown = scheme if scheme.replace("+", "").isalnum() and len(scheme) < 30 else "that"
        raise DatabaseUrlError(
            f"the {shown!r} scheme is not supported; use postgresql://, postgres:// or "
            "postgresql+asyncpg:// (for example "
            f"{EXAMPLE})"
        )
    parts = urlsplit(url.strip())
    if parts.fragment:
        raise DatabaseUrlError("a database URL has no #fragment")
    if "," in parts.netloc:
        raise DatabaseUrlError("several hosts in one URL are not supported")
    try:
        port = DEFAULT_PORT if parts.port is None else parts.port
        if port == 0:
            raise ValueError
    except ValueError:
        raise DatabaseUrlError("the port is not a number from 1 to 65535") from None
    host = parts.hostname
    if not host:
        raise DatabaseUrlError(f"the URL names no host; expected {EXAMPLE}")
    database = unquote(parts.path.removeprefix("/"))
    if not database or "/" in database:
        raise DatabaseUrlError(f"the URL names no database (or a path); expected {EXAMPLE}")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return _with_options(host, port, database, user, password, _query(parts.query))


def _query(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise DatabaseUrlError("the query string is malformed") from None
    for name, value in pairs:
        if name not in PARAMETERS:
            shown = name if name.isidentifier() and len(name) < 40 else "a parameter"
            raise DatabaseUrlError(
                f"unknown query parameter {shown!r}; walletql understands {', '.join(PARAMETERS)}"
            )
        if name in options:
            raise DatabaseUrlError(f"query parameter {name!r} is given twice")
        if not value:
            raise DatabaseUrlError(f"query parameter {name!r} is empty")
        options[name] = value
    return options


def _with_options(
    host: str,
    port: int,
    database: str,
    user: str | None,
    password: str | None,
    options: dict[str, str],
) -> DatabaseUrl:
    rootcert = options.get("sslrootcert")
    # libpq 16: sslrootcert=system means "the system's CAs" and implies verify-full.
    default_mode = "verify-full" if rootcert == "system" else "prefer"
    mode = options.get("sslmode", default_mode)
    if mode not in SSLMODES:
        raise DatabaseUrlError(f"sslmode must be one of {', '.join(SSLMODES)}")
    if rootcert == "system" and mode != "verify-full":
        raise DatabaseUrlError("sslrootcert=system needs sslmode=verify-full")
    verifies = SSLMODES.index(mode) >= SSLMODES.index("require")
    for name in ("sslrootcert", "sslcert", "sslkey"):
        if name in options and not verifies:
            raise DatabaseUrlError(
                f"{name} needs sslmode=require, verify-ca or verify-full "
                f"(with sslmode={mode} the certificate would not be used)"
            )
    if "sslkey" in options and "sslcert" not in options:
        raise DatabaseUrlError("sslkey needs sslcert (the client certificate)")
    timeout = None
    if "connect_timeout" in options:
        text = options["connect_timeout"]
        if not text.isdigit():
            raise DatabaseUrlError("connect_timeout must be a whole number of seconds")
        timeout = int(text)
    return DatabaseUrl(
        host=host,
        port=port,
        database=database,
        user=user,
        password=password,
        sslmode=mode,
        sslrootcert=rootcert,
        sslcert=options.get("sslcert"),
        sslkey=options.get("sslkey"),
        connect_timeout=timeout,
        application_name=options.get("application_name"),
    )


def ssl_argument(url: DatabaseUrl) -> ssl.SSLContext | str | bool:
    """asyncpg's ``ssl`` argument for the URL's sslmode.

    disable: no TLS. allow / prefer: asyncpg's own modes (plain text first / TLS first,
    each falling back to the other, never verifying). require: TLS, the certificate is not
    checked unless sslrootcert is given (libpq then checks the chain, as verify-ca).
    verify-ca: TLS, the chain must lead to sslrootcert (or the system's CAs), any host name.
    verify-full: verify-ca, and the certificate must name the host.
    """
    if url.sslmode == "disable":
        return False
    if url.sslmode in ("allow", "prefer"):
        return url.sslmode
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    check_chain = url.sslmode != "require" or url.sslrootcert is not None
    context.check_hostname = url.sslmode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED if check_chain else ssl.CERT_NONE
    if check_chain:
        if url.sslrootcert in (None, "system"):
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            _load(context.load_verify_locations, "sslrootcert", cafile=url.sslrootcert)
    if url.sslcert is not None:
        # An encrypted key would prompt on the terminal; an empty passphrase makes it fail.
        _load(
            context.load_cert_chain,
            "sslcert/sslkey",
            certfile=url.sslcert,
            keyfile=url.sslkey,
            password=lambda: b"",
        )
    return context


def _load(method: Any, what: str, **kwargs: Any) -> None:
    try:
        method(**kwargs)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, ssl.SSLError):
            reason = "not a PEM certificate/key, or an encrypted key (not supported)"
        raise DatabaseUrlError(f"{what}: cannot load the file ({reason})") from None
