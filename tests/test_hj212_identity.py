"""Identity of stations that speak HJ 212-2017: the MN each data logger is known by, and its
password, issued, rotated and revoked with `airwater stations hj212`, kept only as a hash, and
looked up by the gateway in one query."""

from __future__ import annotations

import psycopg
import psycopg.errors
import pytest

from airwater import cli
from core.hj212_secret import (
    PASSWORD_ALPHABET,
    PASSWORD_LENGTH,
    hash_password,
    new_password,
    verify_password,
)
from storage.hj212 import Hj212Error, identities, issue, revoke, set_mn, station_of_mn

A1, A2, OFF = "110000-A001", "110000-A002", "999999-OFF"
MN1, MN2 = "88888880000001", "88888880000002"


@pytest.fixture()
def conn(database_url: str):
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture()
def run_cli(database_url: str, monkeypatch, capsys):
    """`airwater …` in this process, against the test database: (exit code, stdout, stderr)."""
    monkeypatch.setenv("AIRWATER_DATABASE_URL", database_url)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def issued(stdout: str) -> dict[str, str]:
    """The station_id,password lines an issue or rotate prints."""
    return dict(line.split(",", 1) for line in stdout.splitlines() if "," in line)


def give_password(conn: psycopg.Connection, station_id: str, replace: bool = False) -> str:
    password = new_password()
    issue(conn, station_id, hash_password(password), replace=replace)
    return password


# --- the secret's rules ---------------------------------------------------------------------


def test_generated_password_has_80_random_bits_of_hand_typable_symbols() -> None:
    passwords = {new_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == PASSWORD_LENGTH == 16 for p in passwords)
    assert set("".join(passwords)) <= set(PASSWORD_ALPHABET)
    assert len(PASSWORD_ALPHABET) == 32 and not set("ILOU;,=&") & set(PASSWORD_ALPHABET)


def test_hash_is_salted_sha256_and_verifies_only_its_password() -> None:
    first, second = hash_password("123456"), hash_password("123456")
    assert first != second and first.startswith("sha256$") and "123456" not in first
    assert verify_password("123456", first) and verify_password("123456", second)
    assert not verify_password("123457", first)
    assert not verify_password("", first)
    assert not verify_password("123456", None)
    assert not verify_password("123456", "sha256$zz$00")
    assert not verify_password("123456", first.replace("sha256", "md5", 1))


def test_password_longer_than_32_is_refused_but_32_is_checked() -> None:
    at_limit, beyond = "A" * 32, "A" * 33
    assert verify_password(at_limit, hash_password(at_limit))
    assert not verify_password(beyond, hash_password(beyond))


# --- the registry ---------------------------------------------------------------------------


def test_issued_password_is_accepted_and_a_wrong_one_refused(conn) -> None:
    set_mn(conn, A1, MN1)
    password = give_password(conn, A1)
    identity = station_of_mn(conn, MN1)
    assert identity is not None
    assert (identity.station_id, identity.active, identity.revoked) == (A1, True, False)
    assert identity.accepts(password)
    assert not identity.accepts(password[:-1] + ("0" if password[-1] != "0" else "1"))
    assert not identity.accepts("123456")
    stored = conn.execute("SELECT secret_hash FROM hj212_credentials").fetchall()
    assert stored == [(identity.secret_hash,)] and password not in str(stored)


def test_rotation_retires_the_old_password(conn) -> None:
    set_mn(conn, A1, MN1)
    old = give_password(conn, A1)
    new = give_password(conn, A1, replace=True)
    identity = station_of_mn(conn, MN1)
    assert identity is not None
    assert identity.accepts(new) and not identity.accepts(old)
    rotated_at = conn.execute(
        "SELECT rotated_at FROM hj212_credentials WHERE station_id = %s", (A1,)
    ).fetchone()
    assert rotated_at is not None and rotated_at[0] is not None


def test_issue_and_rotate_refuse_the_wrong_state(conn) -> None:
    with pytest.raises(Hj212Error, match="no HJ 212 password to rotate"):
        give_password(conn, A1, replace=True)
    give_password(conn, A1)
    with pytest.raises(Hj212Error, match="rotate it instead"):
        give_password(conn, A1)
    assert revoke(conn, A1)
    with pytest.raises(Hj212Error, match="revoked; issue"):
        give_password(conn, A1, replace=True)
    with pytest.raises(Hj212Error, match="no station 'NO-SUCH'"):
        give_password(conn, "NO-SUCH")


def test_revoked_password_is_refused_and_reissue_restores_access(conn) -> None:
    set_mn(conn, A1, MN1)
    old = give_password(conn, A1)
    assert revoke(conn, A1)
    assert not revoke(conn, A1)  # revoked already
    identity = station_of_mn(conn, MN1)
    assert identity is not None
    assert (identity.revoked, identity.secret_hash) == (True, None)
    assert not identity.accepts(old)
    fresh = give_password(conn, A1)
    identity = station_of_mn(conn, MN1)
    assert identity is not None and identity.accepts(fresh) and not identity.accepts(old)


def test_unknown_mn_names_no_station(conn) -> None:
    set_mn(conn, A1, MN1)
    assert station_of_mn(conn, "UNKNOWN-MN") is None
    assert station_of_mn(conn, MN1.lower() + "x") is None


def test_station_without_password_has_no_hash(conn) -> None:
    set_mn(conn, A2, MN2)
    assert station_of_mn(conn, MN2) == (A2, True, None, False)


def test_deactivated_station_is_reported_inactive_and_refused(conn) -> None:
    set_mn(conn, OFF, MN1)
    password = give_password(conn, OFF)
    identity = station_of_mn(conn, MN1)
    assert identity is not None
    assert (identity.station_id, identity.active, identity.revoked) == (OFF, False, False)
    assert verify_password(password, identity.secret_hash)  # the password is right…
    assert not identity.accepts(password)  # …but an inactive station may not send


def test_mn_belongs_to_one_station_only(conn) -> None:
    set_mn(conn, A1, MN1)
    with pytest.raises(Hj212Error, match=f"MN '{MN1}' is assigned to station '{A1}' already"):
        set_mn(conn, A2, MN1)
    assert station_of_mn(conn, MN1) == (A1, True, None, False)
    set_mn(conn, A1, MN1)  # the same again is no change
    set_mn(conn, A1, MN2)  # a station's logger replaced: the old MN is free
    set_mn(conn, A2, MN1)
    assert [(i.station_id, i.mn) for i in identities(conn)] == [(A1, MN2), (A2, MN1)]


@pytest.mark.parametrize("mn", ["", "A" * 25, "MN 1", "MN;PW=1", "站点"])
def test_mn_of_the_wrong_form_is_refused(conn, mn: str) -> None:
    with pytest.raises(Hj212Error, match="cannot be an HJ 212 MN"):
        set_mn(conn, A1, mn)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE stations SET hj212_mn = %s WHERE station_id = %s", (mn, A1))


def test_mn_of_unknown_station_is_refused(conn) -> None:
    with pytest.raises(Hj212Error, match="no station 'NO-SUCH'"):
        set_mn(conn, "NO-SUCH", MN1)


def test_deleting_a_station_deletes_its_password(conn) -> None:
    set_mn(conn, A2, MN2)
    give_password(conn, A2)
    conn.execute("DELETE FROM stations WHERE station_id = %s", (A2,))
    assert station_of_mn(conn, MN2) is None
    assert conn.execute("SELECT count(*) FROM hj212_credentials").fetchone() == (0,)


# --- the command ----------------------------------------------------------------------------


def test_cli_round_trip_assign_issue_rotate_revoke(run_cli, conn) -> None:
    assert run_cli("stations", "hj212", "assign", A1, MN1)[0] == 0
    code, _, err = run_cli("stations", "hj212", "assign", A2, MN1)
    assert code == 1 and f"assigned to station '{A1}'" in err

    code, out, err = run_cli("stations", "hj212", "issue", A1)
    assert code == 0 and "shown once" in err
    first = issued(out)[A1]
    identity = station_of_mn(conn, MN1)
    assert identity is not None and identity.accepts(first)
    assert run_cli("stations", "hj212", "issue", A1)[0] == 1  # has one: rotate instead

    code, out, _ = run_cli("stations", "hj212", "rotate", A1)
    second = issued(out)[A1]
    identity = station_of_mn(conn, MN1)
    assert code == 0 and identity is not None
    assert identity.accepts(second) and not identity.accepts(first)

    assert run_cli("stations", "hj212", "revoke", A1)[0] == 0
    identity = station_of_mn(conn, MN1)
    assert identity is not None and identity.revoked and not identity.accepts(second)
    assert run_cli("stations", "hj212", "rotate", A1)[0] == 1  # revoked: issue anew


def test_cli_issue_is_all_or_nothing(run_cli, conn) -> None:
    code, out, err = run_cli("stations", "hj212", "issue", A1, "NO-SUCH")
    assert code == 1 and "no station 'NO-SUCH'" in err and "nothing was changed" in err
    assert out == ""
    assert conn.execute("SELECT count(*) FROM hj212_credentials").fetchone() == (0,)


def test_cli_list_shows_identities_but_no_secret(run_cli, conn) -> None:
    assert run_cli("stations", "hj212", "assign", A1, MN1)[0] == 0
    assert run_cli("stations", "hj212", "assign", A2, MN2)[0] == 0
    password = issued(run_cli("stations", "hj212", "issue", A1)[1])[A1]
    secret_hash = conn.execute("SELECT secret_hash FROM hj212_credentials").fetchone()
    assert secret_hash is not None
    code, out, err = run_cli("stations", "hj212", "list")
    assert code == 0
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert MN1 in lines[A1] and lines[A1].rstrip(" │").endswith("yes")
    assert MN2 in lines[A2] and lines[A2].rstrip(" │").endswith("no")  # no password yet
    assert password not in out + err
    assert secret_hash[0] not in out + err and "sha256$" not in out + err
