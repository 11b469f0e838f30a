"""Preservation holds, investigation requests and threat-to-life referrals over HTTP, and the
`cleanit evidence` commands on a package downloaded from the API."""

from __future__ import annotations

import base64
import os
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cleanit.adapters.evidence import verify_package
from cleanit.bootstrap import vault as make_vault
from cleanit.cli.main import app as cli_app
from cleanit.domain.notices import SourceType
from cleanit.domain.roles import OrgKind
from cleanit.services import organisations
from cleanit.services.context import Context
from cleanit.settings import Settings
from tests.preservation_support import Clock, deliver_all, hold_of, removed
from tests.world import World, build_world

PURPOSE = {"purpose": "review", "reason": "Judicial review of decision, case 2026/51"}
KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def world(ctx: Context, tmp_path: Path) -> World:
    ctx.clock = Clock()
    # The same key and folder as the CLI's runtime below: it must open what the API stored.
    ctx.vault = make_vault(Settings(data_dir=tmp_path / "data", preservation_key=KEY))
    return build_world(ctx)


def test_a_hold_is_listed_opened_with_a_purpose_and_logged(
    world: World, client: TestClient
) -> None:
    case_id, _ = removed(world, "https://host-a.example.org/v/api-1")
    hold = hold_of(world.ctx, case_id)
    r = client.get("/api/v1/preservation-holds", headers=world.auth("legal"))
    assert r.status_code == 200 and [h["id"] for h in r.json()["items"]] == [hold.id]
    assert (
        client.get("/api/v1/preservation-holds", headers=world.auth("other_admin")).json()["total"]
        == 0
    )
    item = f"/api/v1/preservation-holds/{hold.id}/items/record.json"
    no_purpose = client.get(item, headers=world.auth("legal"))
    assert no_purpose.status_code == 422
    assert no_purpose.json()["errors"][0]["field"] == "purpose"
    assert client.get(item, params=PURPOSE, headers=world.auth("reviewer")).status_code == 403
    ok = client.get(item, params=PURPOSE, headers=world.auth("legal"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["content"]["url"] == "https://host-a.example.org/v/api-1"
    assert ok.headers["x-content-sha256"] == hold.items[0]["blob"]["sha256"]
    assert ok.headers["cache-control"] == "no-store"
    log = client.get(
        f"/api/v1/preservation-holds/{hold.id}/accesses", headers=world.auth("auditor")
    )
    assert [a["purpose"] for a in log.json()] == [
        "review: Judicial review of decision, case 2026/51"
    ]


def test_the_platform_uploads_the_file_and_an_authority_extends(
    world: World, client: TestClient
) -> None:
    case_id, _ = removed(
        world,
        "https://host-a.example.org/v/api-2",
        notifier="authority",
        source=SourceType.AUTHORITY_NOTICE,
    )
    hold = hold_of(world.ctx, case_id)
    base = f"/api/v1/preservation-holds/{hold.id}"
    up = client.post(
        f"{base}/content",
        params={"filename": "clip.mp4"},
        content=b"invented video bytes",
        headers={**world.auth("admin"), "Content-Type": "video/mp4"},
    )
    assert up.status_code == 201, up.text
    name = up.json()["items"][1]["name"]
    assert name == "content-001-clip.mp4"
    back = client.get(f"{base}/items/{name}", params=PURPOSE, headers=world.auth("authority"))
    assert back.content == b"invented video bytes"
    assert back.headers["content-type"] == "video/mp4"
    ext = client.post(
        f"{base}/extensions",
        json={"reasons": "Proceedings 2026/51 before the invented court continue.", "months": 2},
        headers=world.auth("authority"),
    )
    assert ext.status_code == 200, ext.text
    assert ext.json()["expires_at"].startswith("2027-04-28")  # 28 Feb + 2 months
    assert ext.json()["extensions"][0]["requested_by"] == "Org authority"


def test_the_evidence_package_downloads_and_verifies_with_the_cli(
    world: World, client: TestClient, tmp_path: Path, database_url: str
) -> None:
    case_id, _ = removed(world, "https://host-a.example.org/v/api-3")
    hold = hold_of(world.ctx, case_id)
    url = f"/api/v1/preservation-holds/{hold.id}/evidence-package"
    assert client.get(url, params=PURPOSE, headers=world.auth("auditor")).status_code == 403
    r = client.get(url, params=PURPOSE, headers=world.auth("legal"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    package = tmp_path / "downloaded.zip"
    package.write_bytes(r.content)
    report = verify_package(package)
    assert report.ok and report.manifest_sha256 == r.headers["x-manifest-sha256"]

    runner = CliRunner()
    env = {
        "CLEANIT_DATABASE_URL": database_url,
        "CLEANIT_DATA_DIR": str(tmp_path / "data"),
        "CLEANIT_PRESERVATION_KEY": KEY,
        "COLUMNS": "220",
    }
    checked = runner.invoke(cli_app, ["evidence", "verify", str(package)], env=env)
    assert checked.exit_code == 0, checked.output
    assert report.manifest_sha256 is not None and report.manifest_sha256 in checked.output
    assert "OK" in checked.output
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(damaged, "w") as dst:
        for zi in src.infolist():
            data = src.read(zi)
            dst.writestr(zi, data + b" " if zi.filename == "metadata.json" else data)
    bad = runner.invoke(cli_app, ["evidence", "verify", str(damaged)], env=env)
    assert bad.exit_code == 2
    assert "metadata.json" in bad.stderr and "changed" in bad.stderr

    out = tmp_path / "operator.zip"
    exported = runner.invoke(
        cli_app,
        [
            "evidence",
            "export",
            "--hold",
            str(hold.id),
            "--output",
            str(out),
            "--purpose",
            "review",
            "--reason",
            "Court request 2026/51 for the full record",
        ],
        env=env,
    )
    assert exported.exit_code == 0, (exported.output, exported.exception)
    assert verify_package(out).ok
    refused = runner.invoke(
        cli_app,
        [
            *("evidence", "export", "--hold", str(hold.id), "--output", str(tmp_path / "x.zip")),
            *("--purpose", "curiosity", "--reason", "just looking around"),
        ],
        env=env,
    )
    assert refused.exit_code == 1 and "not a purpose" in refused.stderr


def test_investigation_requests_over_http(world: World, client: TestClient) -> None:
    body = {
        "provider": "host-a",
        "requesting_authority": "Invented Federal Police",
        "reference": "IFP-7",
        "kind": "disclosure",
        "legal_basis": "Order of the invented investigating judge.",
        "provision": "Code of Criminal Procedure, Art 46bis (BE)",
        "subject": "Account u-77",
        "scope": ["ip_logs"],
        "deadline": "2026-09-10T12:00:00+02:00",
    }
    assert (
        client.post("/api/v1/investigation-requests", json=body, headers=world.auth("legal"))
    ).status_code == 403
    bad = client.post(
        "/api/v1/investigation-requests",
        json=body | {"scope": ["ip_logs", "dna"]},
        headers=world.auth("authority"),
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "scope[1]"
    made = client.post("/api/v1/investigation-requests", json=body, headers=world.auth("authority"))
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    decided = client.post(
        f"/api/v1/investigation-requests/{rid}/decision",
        json={"decision": "comply"},
        headers=world.auth("legal"),
    )
    assert decided.status_code == 200 and decided.json()["decided_categories"] == ["ip_logs"]
    outside = client.post(
        f"/api/v1/investigation-requests/{rid}/disclosures",
        json={"categories": ["content"], "note": "The video file, on a USB stick."},
        headers=world.auth("legal"),
    )
    assert outside.status_code == 422
    assert outside.json()["type"].endswith("principle-violation")
    done = client.post(
        f"/api/v1/investigation-requests/{rid}/disclosures",
        json={"categories": ["ip_logs"], "note": "IP log CSV by encrypted mail."},
        headers=world.auth("legal"),
    )
    assert done.status_code == 201 and len(done.json()["disclosures"]) == 1


def test_threat_to_life_over_http(world: World, client: TestClient, mailbox: Path) -> None:
    organisations.create_organisation(
        world.ctx,
        slug="invented-be-police",
        name="Invented Belgian Police",
        kind=OrgKind.COMPETENT_AUTHORITY,
        contact_email="urgent@police-be.example.org",
        country="BE",
    )
    case_id, _ = removed(world, "https://host-a.example.org/v/api-4")
    body = {"member_state": "BE", "reasons": "Names a person and a date for an invented attack."}
    denied = client.post(
        f"/api/v1/cases/{case_id}/threat-to-life", json=body, headers=world.auth("auditor")
    )
    assert denied.status_code == 403
    r = client.post(
        f"/api/v1/cases/{case_id}/threat-to-life", json=body, headers=world.auth("reviewer")
    )
    assert r.status_code == 201, r.text
    assert r.json()["recipient"] == "urgent@police-be.example.org"
    deliver_all(world.ctx)
    [mail] = list((mailbox / "urgent@police-be.example.org").glob("*.eml"))
    assert "invented attack" in mail.read_text()


def test_a_large_file_is_streamed_past_the_api_body_limit_only_on_the_upload_route(
    world: World, client: TestClient
) -> None:
    case_id, _ = removed(world, "https://host-a.example.org/v/api-big")
    hold = hold_of(world.ctx, case_id)
    big = bytes(range(256)) * (12 * 1024)  # 3 MiB, far over this app's 64 KiB body limit
    up = client.post(
        f"/api/v1/preservation-holds/{hold.id}/content",
        params={"filename": "long.mp4"},
        content=big,
        headers={**world.auth("admin"), "Content-Type": "video/mp4"},
    )
    assert up.status_code == 201, up.text
    name = up.json()["items"][1]["name"]
    back = client.get(
        f"/api/v1/preservation-holds/{hold.id}/items/{name}",
        params=PURPOSE,
        headers=world.auth("legal"),
    )
    assert back.status_code == 200, back.text
    assert back.content == big
    # Every other route keeps the small limit.
    r = client.post(
        f"/api/v1/preservation-holds/{hold.id}/extensions",
        content=b"{" + b" " * (100 * 1024) + b"}",
        headers={**world.auth("authority"), "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and "65536 bytes" in r.json()["detail"]
