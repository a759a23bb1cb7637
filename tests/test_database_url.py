"""WALLETQL_DATABASE_URL: the URL forms providers hand out, mapped onto asyncpg; refusals."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from db.url import DatabaseUrlError, parse_database_url
from tests.tls_support import authority
from walletql.settings import Settings
from walletql.startup import StartupError, describe, load_settings

PASSWORD = "Pa55-w0rd_only-in-the-url"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+asyncpg", "POSTGRES"])
def test_the_three_schemes_give_the_same_connection(scheme: str) -> None:
    url = parse_database_url(f"{scheme}://wq%40team:{PASSWORD}%2F@db.example:6543/wallet%20ql")
    assert url.asyncpg_kwargs() == {
        "host": "db.example",
        "port": 6543,
        "user": "wq@team",
        "password": f"{PASSWORD}/",
        "database": "wallet ql",
        "ssl": "prefer",
    }
    engine_url = url.sqlalchemy_url()
    assert engine_url.drivername == "postgresql+asyncpg"
    assert (engine_url.host, engine_url.port, engine_url.database) == (
        "db.example",
        6543,
        "wallet ql",
    )
    assert engine_url.password == f"{PASSWORD}/"


def test_defaults_follow_libpq() -> None:
    url = parse_database_url("postgresql://db.example/walletql")
    assert (url.port, url.user, url.password, url.sslmode) == (5432, None, None, "prefer")
    assert url.connect_args() == {"ssl": "prefer"}


def test_the_password_is_masked_when_shown() -> None:
    url = parse_database_url(f"postgres://wq:{PASSWORD}@db.example/walletql?sslmode=require")
    assert str(url) == "postgresql://wq:***@db.example:5432/walletql?sslmode=require"
    assert PASSWORD not in repr(url)
    assert PASSWORD in url.render(hide_password=False)


@pytest.mark.parametrize(
    ("mode", "expected"), [("disable", False), ("allow", "allow"), ("prefer", "prefer")]
)
def test_sslmodes_without_verification_use_asyncpgs_own_modes(mode: str, expected: object) -> None:
    # allow and prefer fall back between plain text and TLS; asyncpg implements exactly that.
    url = parse_database_url(f"postgresql://h/db?sslmode={mode}")
    assert url.connect_args()["ssl"] == expected


def context_of(url: str) -> ssl.SSLContext:
    context = parse_database_url(url).connect_args()["ssl"]
    assert isinstance(context, ssl.SSLContext)
    return context


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    return authority("root").write(tmp_path)


def test_require_encrypts_without_checking_the_certificate() -> None:
    context = context_of("postgresql://h/db?sslmode=require")
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_require_with_a_root_certificate_checks_the_chain_as_libpq_does(ca_file: Path) -> None:
    context = context_of(f"postgresql://h/db?sslmode=require&sslrootcert={ca_file}")
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, False)
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "walletql test CA root"),),)
    ]


def test_verify_ca_checks_the_chain_but_not_the_host_name(ca_file: Path) -> None:
    context = context_of(f"postgresql://h/db?sslmode=verify-ca&sslrootcert={ca_file}")
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, False)
    assert len(context.get_ca_certs()) == 1


def test_verify_full_checks_the_chain_and_the_host_name(ca_file: Path) -> None:
    context = context_of(f"postgresql://h/db?sslmode=verify-full&sslrootcert={ca_file}")
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert len(context.get_ca_certs()) == 1


def test_sslrootcert_system_means_the_system_cas_and_verify_full() -> None:
    url = parse_database_url("postgresql://h/db?sslrootcert=system")
    assert url.sslmode == "verify-full"
    context = url.connect_args()["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


def test_a_client_certificate_and_key_are_loaded(tmp_path: Path, ca_file: Path) -> None:
    issued = authority("clients").issue(tmp_path, "walletql", client=True)
    url = parse_database_url(
        f"postgresql://h/db?sslmode=verify-full&sslrootcert={ca_file}"
        f"&sslcert={issued.cert}&sslkey={issued.key}"
    )
    assert (url.sslcert, url.sslkey) == (str(issued.cert), str(issued.key))
    assert isinstance(url.connect_args()["ssl"], ssl.SSLContext)


@pytest.mark.parametrize(("value", "timeout"), [("10", 10), ("1", 2), ("0", None)])
def test_connect_timeout_is_asyncpgs_timeout(value: str, timeout: int | None) -> None:
    # libpq: 0 waits forever; under 2 seconds counts as 2.
    url = parse_database_url(f"postgresql://h/db?connect_timeout={value}")
    assert url.connect_args()["timeout"] == timeout


def test_application_name_is_a_server_setting() -> None:
    url = parse_database_url("postgresql://h/db?application_name=walletql-api%201")
    assert url.connect_args()["server_settings"] == {"application_name": "walletql-api 1"}


def test_with_database_keeps_the_server_and_options() -> None:
    url = parse_database_url(f"postgres://wq:{PASSWORD}@h:7/one?sslmode=disable&connect_timeout=3")
    other = url.with_database("two")
    assert other.asyncpg_kwargs() == {**url.asyncpg_kwargs(), "database": "two"}


REFUSED = [
    (f"mysql://wq:{PASSWORD}@db.example/walletql", "'mysql' scheme is not supported"),
    (f"{PASSWORD}", "not a database URL"),
    (f"postgresql+psycopg://wq:{PASSWORD}@h/db", "scheme is not supported"),
    (f"postgresql://wq:{PASSWORD}@h/db?sslmode=sometimes", "sslmode must be one of"),
    (f"postgresql://wq:{PASSWORD}@h/db?password={PASSWORD}", "unknown query parameter 'password'"),
    (f"postgresql://wq:{PASSWORD}@h/db?{PASSWORD}=1", "unknown query parameter"),
    (f"postgresql://wq:{PASSWORD}@h/db?sslmode=require&sslmode=disable", "given twice"),
    (f"postgresql://wq:{PASSWORD}@h/db?application_name=", "'application_name' is empty"),
    (f"postgresql://wq:{PASSWORD}@h/db?connect_timeout=soon", "whole number of seconds"),
    (f"postgresql://wq:{PASSWORD}@h:99999/db", "port is not a number"),
    (f"postgresql://wq:{PASSWORD}@h:0/db", "port is not a number"),
    (f"postgresql://wq:{PASSWORD}@h", "names no database"),
    (f"postgresql://wq:{PASSWORD}@/db", "names no host"),
    (f"postgresql://wq:{PASSWORD}@h1,h2/db", "several hosts"),
    (f"postgresql://wq:{PASSWORD}@h/db?sslmode=prefer&sslcert=/c", "sslcert needs sslmode=require"),
    (f"postgresql://wq:{PASSWORD}@h/db?sslrootcert=/ca.pem", "sslrootcert needs sslmode=require"),
    (f"postgresql://wq:{PASSWORD}@h/db?sslmode=require&sslkey=/k", "sslkey needs sslcert"),
    (
        f"postgresql://wq:{PASSWORD}@h/db?sslmode=require&sslrootcert=system",
        "sslrootcert=system needs sslmode=verify-full",
    ),
    (
        f"postgresql://wq:{PASSWORD}@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        "sslrootcert: cannot load the file (No such file or directory)",
    ),
]


@pytest.mark.parametrize(("url", "problem"), REFUSED)
def test_unusable_urls_are_refused_without_showing_the_password(url: str, problem: str) -> None:
    with pytest.raises(DatabaseUrlError) as refused:
        parse_database_url(url)
    assert problem in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_an_encrypted_client_key_is_refused(tmp_path: Path) -> None:
    issued = authority("c").issue(tmp_path, "wq", client=True, passphrase=PASSWORD.encode())
    with pytest.raises(DatabaseUrlError, match="encrypted key") as refused:
        parse_database_url(
            f"postgresql://h/db?sslmode=require&sslcert={issued.cert}&sslkey={issued.key}"
        )
    assert PASSWORD not in str(refused.value)


def test_settings_refuse_an_unusable_url_in_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WALLETQL_DATABASE_URL", f"mysql://wq:{PASSWORD}@db.example/walletql")
    with pytest.raises(StartupError) as refused:
        load_settings(_env_file=None)
    message = str(refused.value)
    assert message.startswith("invalid settings: WALLETQL_DATABASE_URL: the 'mysql' scheme")
    assert "\n" not in message
    assert PASSWORD not in message
    # pydantic's own text hides the input too (it lands in tracebacks elsewhere).
    with pytest.raises(ValidationError) as raw:
        Settings(_env_file=None)
    assert PASSWORD not in str(raw.value)
    assert describe(raw.value) == message


def test_settings_parse_the_url_once_for_every_consumer() -> None:
    settings = Settings(
        _env_file=None,
        database_url=f"postgres://wq:{PASSWORD}@db.example/walletql?sslmode=disable",
    )
    assert settings.database is not None
    assert settings.database.asyncpg_kwargs()["password"] == PASSWORD
    assert settings.database is settings.database
    assert PASSWORD not in repr(settings)


def test_an_empty_url_means_the_embedded_database() -> None:
    settings = Settings(_env_file=None, database_url="")
    assert settings.database is None
    assert settings.embedded_database
