"""``cleanit orders``: configure a provider, list orders with their countdown, show one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cleanit.cli.main import app
from cleanit.services import orders
from cleanit.services.context import Context
from tests.world import World, build_world

Run = Callable[..., Result]


@pytest.fixture
def cli(ctx: Context, database_url: str, tmp_path: Path) -> Run:
    runner = CliRunner()
    env = {
        "CLEANIT_DATABASE_URL": database_url,
        "CLEANIT_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "220",
    }

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return run


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def test_configure_list_and_show(cli: Run, world: World) -> None:
    r = cli(
        "orders",
        "configure",
        "--org",
        "host-a",
        "--domain",
        "host-a.example.org",
        "--contact-email",
        "on-call@host-a.example.org",
    )
    assert r.exit_code == 0, r.output
    assert "host-a.example.org" in r.output
    receipt = orders.receive_order(
        world.ctx,
        world.p("authority"),
        {
            "addressee": "host-a",
            "issuing_authority": "Invented Referral Office",
            "issuing_member_state": "BE",
            "reference": "RO-CLI-1",
            "issued_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "content_urls": ["https://host-a.example.org/v/cli"],
            "reasons": ["threat"],
            "host_member_state": "BE",
            "contact_email": "orders@authority.example.org",
            "redress_information": "Challenge before the invented administrative court.",
        },
    )
    r = cli("orders", "list", "--org", "host-a")
    assert r.exit_code == 0, r.output
    assert "RO-CLI-1" in r.output and " left" in r.output and "1 removal order(s)" in r.output
    r = cli("orders", "show", receipt.order_id, "--org", "authority")
    assert r.exit_code == 0, r.output
    assert "Removal order RO-CLI-1" in r.output and "verified: True" in r.output
    assert "https://host-a.example.org/v/cli" in r.output
    r = cli("orders", "show", receipt.order_id, "--org", "host-b")
    assert r.exit_code == 1 and "no such removal order" in r.output


def test_configure_refuses_a_bad_domain(cli: Run, world: World) -> None:
    r = cli("orders", "configure", "--org", "host-a", "--domain", "not a domain")
    assert r.exit_code == 1 and "not a domain name" in r.output


def test_pre_authorise_and_revoke(cli: Run, world: World) -> None:
    r = cli("orders", "pre-authorise", "--org", "host-a", "--authority", "authority")
    assert r.exit_code == 0, r.output
    assert "executes orders of authority on receipt (disable_access)" in r.output
    r = cli(
        "orders",
        "pre-authorise",
        "--org",
        "host-a",
        "--authority",
        "authority",
        "--action",
        "remove",
    )
    assert r.exit_code == 0 and "(remove)" in r.output
    [pre] = orders.list_pre_authorisations(world.ctx, world.p("reviewer"))
    assert pre.active and pre.action == "remove" and pre.authorised_by == "operator"
    r = cli("orders", "pre-authorise", "--org", "host-a", "--authority", "iru")
    assert r.exit_code == 1 and "no competent authority 'iru'" in r.output
    r = cli(
        "orders", "pre-authorise", "--org", "host-a", "--authority", "authority", "--action", "x"
    )
    assert r.exit_code == 1 and "not an execution" in r.output
    r = cli("orders", "revoke-pre-authorisation", str(pre.id), "--org", "host-b")
    assert r.exit_code == 1 and f"no pre-authorisation {pre.id}" in r.output
    r = cli("orders", "revoke-pre-authorisation", str(pre.id), "--org", "host-a")
    assert r.exit_code == 0 and "revoked" in r.output
    assert [p.active for p in orders.list_pre_authorisations(world.ctx, world.p("legal"))] == [
        False
    ]
