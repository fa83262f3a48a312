"""``bindu-storage diagnose`` and ``bindu-storage migrate``: the commands of operations."""

from __future__ import annotations

import argparse
import dataclasses
import html

from bindu_storage.cli.app import CliError, known_urls
from bindu_storage.cli.common import Target, announce, resolve, schema_of, settings, where
from bindu_storage.cli.table import render
from bindu_storage.dsn import mask_secrets
from bindu_storage.settings import StorageSettings


async def run_diagnose(args: argparse.Namespace) -> int:
    """The ``diagnose`` command: the health report; exit 0 ok, 1 warn, 2 critical.

    With ``--format json`` or ``html`` stdout always carries one document, also when there is no
    report (database unreachable, bad settings): status ``error``, the password-free error, exit 2,
    so that cron and CI can parse it; the one-line error still goes to stderr.
    """
    import json
    from datetime import UTC, datetime

    from bindu_storage.analysis.diagnostics import health_report
    from bindu_storage.cli.app import one_line
    from bindu_storage.dsn import describe_target

    def page(title: str, body: str) -> str:
        return (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f"</head>\n<body>\n{body}\n</body></html>")

    def error_document(exc: Exception, url: str | None, schema: str | None) -> str:
        try:
            target = describe_target(url) if url else None
        except Exception:  # a URL it cannot describe: the error says what is wrong with it
            target = None
        error = one_line(exc, [u for u in (url, *known_urls(args)) if u])
        if args.format == "json":
            return json.dumps({
                "target": target, "schema": schema, "role": None,
                "generated_at": datetime.now(UTC).isoformat(), "status": "error",
                "exit_code": int(args.error_status), "error": error, "findings": [],
            }, indent=2, ensure_ascii=False)
        where = f" ({target}, schema {schema})" if target else ""
        return page("bindu-storage health report: error",
                    f'<div class="bindu-health-report"><p><strong>ERROR</strong>{html.escape(where)}: '
                    f"no report: {html.escape(error)}</p></div>")

    url: str | None = None
    schema: str | None = None
    try:
        cfg = settings()
        target = resolve(args, cfg, needs="reads")
        announce(args, target)
        url, schema = target.url, target.schema
        assert url is not None  # needs="reads" refuses a target without a database
        report = await health_report(url, schema=schema)
    except Exception as exc:
        if args.format in ("json", "html"):
            print(mask_secrets(error_document(exc, url, schema), url, *known_urls(args)))
        raise  # the one-line error on stderr and exit status 2, as for every command
    if args.format == "json":
        out = report.to_json()
    elif args.format == "html":
        out = page(f"bindu-storage health report: {report.status}", report._repr_html_())
    else:
        out = report.to_text()
    print(mask_secrets(out, url, *known_urls(args)))
    return report.exit_code


def _schema(args: argparse.Namespace, cfg: StorageSettings) -> str:
    """``--did`` (upstream's schema of that agent), else ``--schema`` or the configured one."""
    if getattr(args, "did", None):
        from bindu_storage.sqlnames import schema_for_did

        return schema_for_did(args.did)
    return schema_of(args, cfg)


def _history_rows(current: str | None, head: str) -> list[list[str]]:
    from alembic.script import ScriptDirectory

    from bindu_storage.storage import migrate

    script = ScriptDirectory(str(migrate.script_location()))
    rows = []
    for rev in reversed(list(script.walk_revisions())):
        hits = (("current", rev.revision == current), ("head", rev.revision == head))
        marks = [m for m, hit in hits if hit]
        doc = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
        rows.append([rev.revision, doc, ", ".join(marks)])
    return rows


async def run_migrate(args: argparse.Namespace) -> int:
    """The ``migrate`` command: upgrade, downgrade, current, history, to-upstream."""
    from bindu_storage.storage import migrate

    cfg = settings()
    head = migrate.head_revision()
    if getattr(args, "did", None) and args.schema:
        raise CliError("give either --schema or --did, not both")
    if args.revision is not None and args.action in ("current", "to-upstream", "history"):
        raise CliError("--revision applies to upgrade and downgrade only")
    # history needs no database: on memory it lists the revisions, with no "current" mark
    chosen = resolve(args, cfg, needs=None if args.action == "history" else "migrates")
    chosen = dataclasses.replace(chosen, schema=_schema(args, cfg)) if chosen.url else chosen
    announce(args, chosen)
    if args.action == "history":
        current = None
        if chosen.url is not None:
            current = await migrate.current_revision(chosen.url, chosen.schema)
        print(render(["revision", "change", "mark"], _history_rows(current, head), right=()))
        return 0
    return await _migrate_database(args, chosen, head)


async def _migrate_database(args: argparse.Namespace, chosen: Target, head: str) -> int:
    from bindu_storage.storage import migrate

    assert chosen.url is not None and chosen.schema is not None
    url, schema = chosen.url, chosen.schema
    target = where(url, schema)
    if args.action == "to-upstream":
        done = await migrate.to_upstream(url, schema)
        marker = f"alembic_version {done.marker}" if done.marker else "no alembic_version"
        if not done.changed:
            print(f"{target}: already upstream Bindu's ({marker}), nothing to do")
        else:
            print(f"{target}: handed back to upstream Bindu: {done.before} → {marker}; every row kept")
        return 0
    before = await migrate.current_revision(url, schema)
    if args.action == "current":
        state = (
            "up to date" if before == head else "not migrated" if before is None else f"behind head {head}"
        )
        print(f"{target}: {before or 'none'} ({state})")
        return 0
    if args.action == "upgrade":
        await migrate.upgrade(url, schema, args.revision or "head")
    else:
        await migrate.downgrade(url, schema, args.revision or "-1")
    after = await migrate.current_revision(url, schema)
    verb = "upgraded" if args.action == "upgrade" else "downgraded"
    if before == after:
        print(f"{target}: already at {after or 'base'}, nothing to do")
    else:
        print(f"{target}: {verb} {before or 'base'} → {after or 'base'}")
    return 0
