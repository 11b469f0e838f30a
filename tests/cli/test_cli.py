"""The operator's command line, run in-process against the real test database."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner, Result

from cleanit.adapters.db.models import (
    ApiToken,
    AuditEntry,
    Case,
    ContentItem,
    Message,
    Notice,
    NoticeCase,
    Organisation,
    User,
)
from cleanit.cli.main import app
from cleanit.services import audit
from cleanit.services.authz import check_password, principal_for_token
from cleanit.services.context import Context
from tests.world import World, build_world

Run = Callable[..., Result]
PASSWORD = "a long enough password"


@pytest.fixture
def cli(ctx: Context, database_url: str, tmp_path: Path) -> Run:
    """Invoke ``cleanit`` with the test database (tables emptied by ``ctx``)."""
    runner = CliRunner()
    env = {
        "CLEANIT_DATABASE_URL": database_url,
        "CLEANIT_DATA_DIR": str(tmp_path / "data"),
        "CLEANIT_NEW_PASSWORD": None,
        "COLUMNS": "220",  # rich tables: no wrapping inside cells
    }

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), env=env, input=input)

    return run


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def count(ctx: Context, model: type) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def stored(ctx: Context) -> dict[str, int]:
    return {
        m.__name__: count(ctx, m)
        for m in (Notice, Case, ContentItem, NoticeCase, Message, AuditEntry)
    }


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def refused(result: Result, code: int = 1) -> str:
    """A readable refusal: the exit code, a message on stderr, no traceback."""
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    return result.stderr


def table_row(output: str, first_cell: str) -> list[str]:
    """The cells of the rich table row whose first cell is ``first_cell``."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)[1:-1]]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row for {first_cell!r} in:\n{output}")


# --- organisations, people, tokens -----------------------------------------------------------


def test_orgs_create(cli: Run, ctx: Context) -> None:
    out = ok(
        cli(
            "orgs",
            "create",
            "acme-video",
            "Acme Video",
            "--kind",
            "hosting_provider",
            "--contact-email",
            "ops@acme.example.org",
        )
    ).stdout
    assert "Created organisation acme-video" in out
    with ctx.sessions() as s:
        org = s.scalar(select(Organisation).where(Organisation.slug == "acme-video"))
        assert org is not None
        assert (org.name, org.kind, org.contact_email) == (
            "Acme Video",
            "hosting_provider",
            "ops@acme.example.org",
        )
    assert audit.verify(ctx).ok
    assert "already exists" in refused(
        cli("orgs", "create", "acme-video", "Again", "--kind", "research")
    )
    assert "slug" in refused(cli("orgs", "create", "Not A Slug!", "X", "--kind", "research"))
    refused(cli("orgs", "create", "bank", "Bank", "--kind", "bank"), code=2)  # usage error
    assert count(ctx, Organisation) == 1


def test_users_create(cli: Run, world: World, ctx: Context) -> None:
    out = ok(
        cli(
            "users",
            "create",
            "New.Reviewer@host-a.example.org",
            "--org",
            "host-a",
            "--role",
            "reviewer",
            "--role",
            "legal",
            "--name",
            "New Reviewer",
            "--password",
            PASSWORD,
        )
    ).stdout
    assert "Created user new.reviewer@host-a.example.org" in out
    assert "reviewer, legal" in out
    with ctx.sessions() as s:
        user = check_password(s, ctx.passwords, "new.reviewer@host-a.example.org", PASSWORD)
        assert user.roles == ["reviewer", "legal"] and user.name == "New Reviewer"
        assert user.organisation_id == world.org_ids["host-a"]
    # Without --password the password is asked twice, hidden.
    ok(
        cli(
            "users",
            "create",
            "prompted@iru.example.org",
            "--org",
            "iru",
            "--role",
            "referral_analyst",
            input=f"{PASSWORD}\n{PASSWORD}\n",
        )
    )
    with ctx.sessions() as s:
        assert check_password(s, ctx.passwords, "prompted@iru.example.org", PASSWORD)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--org", "host-a", "--role", "referral_analyst"),
            "hosting_provider organisation cannot hold the role(s) referral_analyst",
        ),
        (
            ("--org", "iru", "--role", "reviewer", "--role", "legal"),
            "referral_unit organisation cannot hold the role(s) legal, reviewer",
        ),
        (("--org", "flagger", "--role", "auditor"), "cannot hold the role(s) auditor"),
        (("--org", "nowhere", "--role", "reviewer"), "no organisation 'nowhere'"),
    ],
)
def test_users_create_refuses_roles_the_organisation_cannot_hold(
    cli: Run, world: World, ctx: Context, args: tuple[str, ...], message: str
) -> None:
    users = count(ctx, User)
    err = refused(cli("users", "create", "wrong@example.org", *args, "--password", PASSWORD))
    assert "Error:" in err and message in " ".join(err.split())
    assert count(ctx, User) == users


def test_users_create_refuses_bad_input_readably(cli: Run, world: World, ctx: Context) -> None:
    users = count(ctx, User)
    assert "12 characters" in refused(
        cli(
            "users",
            "create",
            "short@host-a.example.org",
            "--org",
            "host-a",
            "--role",
            "reviewer",
            "--password",
            "short",
        )
    )
    assert "already exists" in refused(
        cli(
            "users",
            "create",
            "reviewer@host-a.example.org",
            "--org",
            "host-a",
            "--role",
            "reviewer",
            "--password",
            PASSWORD,
        )
    )
    refused(
        cli(
            "users",
            "create",
            "x@host-a.example.org",
            "--org",
            "host-a",
            "--role",
            "wizard",
            "--password",
            PASSWORD,
        ),
        code=2,
    )
    assert count(ctx, User) == users


def test_tokens_issue(cli: Run, world: World, ctx: Context) -> None:
    token = ok(
        cli("tokens", "issue", "--org", "iru", "--role", "referral_analyst", "--name", "ingest bot")
    ).stdout.strip()
    assert re.fullmatch(r"\S{30,}", token)
    with ctx.sessions() as s:
        p = principal_for_token(s, token)
        row = s.get(ApiToken, p.token_id)
        assert row is not None and row.name == "ingest bot" and token not in row.token_hash
    assert p.organisation_id == world.org_ids["iru"] and p.user_id is None
    assert {r.value for r in p.roles} == {"referral_analyst"}
    tokens = count(ctx, ApiToken)
    assert "cannot hold the role(s) reviewer" in refused(
        cli("tokens", "issue", "--org", "iru", "--role", "reviewer")
    )
    assert count(ctx, ApiToken) == tokens


# --- importing notices -----------------------------------------------------------------------

CSV_HEADER = (
    "provider,category,explanation,locations,jurisdiction,good_faith,notifier_name,notifier_email\n"
)
CAT = "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"
WHY = "It calls on people to join an invented violent group."


def csv_line(location: str, provider: str = "host-a") -> str:
    return f'{provider},{CAT},"{WHY}",{location},DE,yes,Pat Public,pat@public.example.net\n'


def jsonl(**over: object) -> bytes:
    record: dict[str, object] = {
        "provider": "host-a",
        "source_type": "referral_unit",
        "category": CAT,
        "explanation": WHY,
        "locations": ["https://host-a.example.org/v/1"],
        "jurisdiction": "DE",
        "good_faith": True,
    }
    record.update(over)
    return json.dumps(record).encode() + b"\n"


def test_import_csv_stores_every_line_and_joins_cases(
    cli: Run, world: World, ctx: Context, tmp_path: Path
) -> None:
    before = stored(ctx)
    f = tmp_path / "notices.csv"
    f.write_text(
        CSV_HEADER
        + csv_line("https://host-a.example.org/v/1")
        + csv_line("https://host-a.example.org/v/2")
        + csv_line("HTTPS://HOST-A.example.org:443/v/1/")
    )  # same content as line 2
    result = ok(cli("notices", "import", str(f)))
    assert "Imported 3 notice(s) into 2 case(s)." in result.stdout
    assert "Checking" in result.stderr and "Storing" in result.stderr  # progress
    after = stored(ctx)
    assert after["Notice"] - before["Notice"] == 3
    assert after["Case"] - before["Case"] == 2
    assert after["NoticeCase"] - before["NoticeCase"] == 3
    with ctx.sessions() as s:
        rows = s.execute(
            select(Notice.source_type, Notice.notifier_org_id, Notice.notifier_name)
        ).all()
        per_case = s.execute(
            select(NoticeCase.case_id, func.count()).group_by(NoticeCase.case_id)
        ).all()
    assert {tuple(r) for r in rows} == {("end_user", None, "Pat Public")}
    assert sorted(n for _, n in per_case) == [1, 2]
    assert audit.verify(ctx).ok


def test_import_json_lines_as_an_organisation(
    cli: Run, world: World, ctx: Context, tmp_path: Path
) -> None:
    f = tmp_path / "referrals.jsonl"
    f.write_bytes(
        jsonl()
        + b"\n"  # blank lines are skipped
        + jsonl(locations=["https://host-a.example.org/v/1#t=10", "https://host-a.example.org/v/3"])
        + jsonl(locations="https://host-b.example.org/v/9", provider="host-b")
    )
    result = ok(cli("notices", "import", str(f), "--org", "iru"))
    assert "Imported 3 notice(s) into 3 case(s)." in result.stdout
    with ctx.sessions() as s:
        notices = s.scalars(select(Notice).order_by(Notice.id)).all()
        assert [n.notifier_org_id for n in notices] == [world.org_ids["iru"]] * 3
        assert {n.source_type for n in notices} == {"referral_unit"}
        case_of = dict(
            s.execute(
                select(ContentItem.canonical_url, Case.id).join(
                    Case, Case.content_item_id == ContentItem.id
                )
            ).all()
        )
        links = s.execute(select(NoticeCase.notice_id, NoticeCase.case_id)).all()
    assert set(case_of) == {
        "https://host-a.example.org/v/1",
        "https://host-a.example.org/v/3",
        "https://host-b.example.org/v/9",
    }
    first, second, third = (n.id for n in notices)
    assert sorted(c for n, c in links if n == first) == [case_of["https://host-a.example.org/v/1"]]
    assert sorted(c for n, c in links if n == second) == sorted(
        [case_of["https://host-a.example.org/v/1"], case_of["https://host-a.example.org/v/3"]]
    )
    assert [c for n, c in links if n == third] == [case_of["https://host-b.example.org/v/9"]]


def test_a_file_with_bad_lines_stores_nothing_and_names_every_bad_line(
    cli: Run, world: World, ctx: Context, tmp_path: Path
) -> None:
    before = stored(ctx)
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(
        jsonl()  # 1 good
        + jsonl(locations=["ftp://host-a.example.org/v/2"])  # 2 bad URL
        + jsonl(category="STATEMENT_CATEGORY_NOT_A_CATEGORY")  # 3 unknown category
        + b'{"provider": "host-a", "category": \n'  # 4 invalid JSON
        + b'{"provider": "host-a", "explanation": "caf\xe9 \xff"}\n'  # 5 invalid UTF-8
        + jsonl(locations=["https://host-a.example.org/v/6"])  # 6 good
        + jsonl(jurisdiction="US", good_faith=False)  # 7 bad jurisdiction
    )
    err = refused(cli("notices", "import", str(f), "--org", "iru"))
    assert "5 invalid line(s): nothing was imported" in err
    assert table_row(err, "2")[1] == "locations"
    assert table_row(err, "3")[1] == "category"
    assert "NOT_A_CATEGORY" in table_row(err, "3")[2]
    assert table_row(err, "4")[1:2] == [""] and "not valid JSON" in table_row(err, "4")[2]
    assert table_row(err, "5")[1:2] == [""] and "not valid UTF-8" in table_row(err, "5")[2]
    assert table_row(err, "7")[1] == "jurisdiction"
    for good in ("1", "6"):
        with pytest.raises(AssertionError):
            table_row(err, good)
    assert "Storing" not in err
    assert stored(ctx) == before


def test_a_csv_with_bad_lines_names_them_by_line_number(
    cli: Run, world: World, ctx: Context, tmp_path: Path
) -> None:
    before = stored(ctx)
    f = tmp_path / "mixed.csv"
    f.write_text(
        CSV_HEADER  # line 1
        + csv_line("https://host-a.example.org/v/1")  # line 2
        + csv_line("not-a-url")  # line 3
        + f',{CAT},"{WHY}",https://host-a.example.org/v/4,DE,yes,Pat,pat@x.example\n'
        + csv_line("https://host-a.example.org/v/5").replace("yes", "perhaps")
    )
    err = refused(cli("notices", "import", str(f)))
    assert "3 invalid line(s)" in err
    assert table_row(err, "3")[1] == "locations"
    assert table_row(err, "4")[1] == "provider"
    assert table_row(err, "5")[1] == "good_faith"
    assert stored(ctx) == before


def test_a_line_that_fails_only_when_stored_stores_nothing(
    cli: Run, world: World, ctx: Context, tmp_path: Path
) -> None:
    before = stored(ctx)
    f = tmp_path / "unknown-provider.jsonl"
    f.write_bytes(
        jsonl()
        + jsonl(locations=["https://host-a.example.org/v/2"])
        + jsonl(provider="nobody-hosting", locations=["https://nobody.example.org/v/3"])
        + jsonl(locations=["https://host-a.example.org/v/4"])
    )
    err = " ".join(refused(cli("notices", "import", str(f), "--org", "iru")).split())
    assert "line 3" in err and "no hosting provider 'nobody-hosting'" in err
    assert "nothing was imported" in err
    assert stored(ctx) == before  # lines 1 and 2 were rolled back with it
    assert audit.verify(ctx).ok


def test_import_refuses_unknown_organisations_and_file_types(
    cli: Run, world: World, tmp_path: Path
) -> None:
    f = tmp_path / "notices.jsonl"
    f.write_bytes(jsonl())
    assert "no organisation 'nowhere'" in refused(
        cli("notices", "import", str(f), "--org", "nowhere")
    )
    other = tmp_path / "notices.xml"
    other.write_text("<notices/>")
    assert ".csv or .jsonl" in refused(cli("notices", "import", str(other)))


# --- the audit log ---------------------------------------------------------------------------


def test_audit_verify(cli: Run, world: World, ctx: Context) -> None:
    entries = count(ctx, AuditEntry)
    out = ok(cli("audit", "verify")).stdout
    assert "OK" in out and f"{entries} entries" in out
    with ctx.transaction() as s:
        s.execute(text("UPDATE audit_log SET actor = 'user:999' WHERE seq = 5"))
    err = refused(cli("audit", "verify"), code=2)
    assert "BROKEN" in err
    assert table_row(err, "5")[1] == "changed"
    with ctx.transaction() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 9"))
    err = refused(cli("audit", "verify"), code=2)
    assert table_row(err, "5")[1] == "changed"
    assert table_row(err, "9")[1] == "missing"
    assert table_row(err, "10")[1] == "broken-link"


def test_audit_verify_with_an_anchor_detects_truncation(
    cli: Run, world: World, ctx: Context
) -> None:
    out = ok(cli("audit", "verify")).stdout
    head = next(line for line in out.splitlines() if line.startswith("Head: ")).split()[1]
    seq = int(head.split(":")[0])
    assert "OK" in ok(cli("audit", "verify", "--anchor", head)).stdout
    with ctx.transaction() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq >= :k"), {"k": seq - 1})
    assert "OK" in ok(cli("audit", "verify")).stdout  # looks intact on its own
    err = refused(cli("audit", "verify", "--anchor", head), code=2)
    assert table_row(err, str(seq))[1] == "truncated"
    assert "SEQ:HASH" in refused(cli("audit", "verify", "--anchor", "nonsense"))
