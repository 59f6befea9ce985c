"""The ``smartcounter`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import resource
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from document_share.retention import purge
from document_share.storage import BlobStore
from media.recorder import RecordingDirectory
from media.vision.models import ModelError, check_models, prepare
from sessions.accounts import ROLES, AccountDirectory
from sessions.audit import AuditLog, Verdict
from sessions.audit_export import export, write_export
from sessions.catalog import Catalog, CatalogError, ensure_catalog_file
from sessions.errors import DomainError
from sessions.sqlite_schema import SchemaError
from sessions.sqlite_store import StoreLocked
from signaling.connections import ConnectionGuard, GuardedSite
from signaling.jobs import NotDurable
from signaling.keys import DRAIN

from .app import build_app
from .config import ConfigError, Settings, check_store, load
from .demo import describe, ensure_demo_accounts, switch_off_demo_accounts
from .logs import configure_logging
from .store_commands import cmd_backup, cmd_store_check, cmd_store_rebuild, empty_store_problem

logger = logging.getLogger(__name__)


def _settings(args: argparse.Namespace) -> Settings:
    config = getattr(args, "config", None)
    settings = load(Path(config) if config else None)
    for name in ("host", "port", "redis_url", "node_id", "store"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(settings, name, value)
    if getattr(args, "data_dir", None) is not None:
        settings.data_dir = Path(args.data_dir)
    check_store(settings)
    return settings


# Below this many open files a node can hold few calls (each is several sockets) and a
# burst of idle connections can stop it accepting anyone.
WANTED_OPEN_FILES = 8192


def raise_open_files_limit() -> None:
    """Raise the soft open-files limit towards the hard one; warn when it stays low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard,
                                                                          WANTED_OPEN_FILES)
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    if soft < WANTED_OPEN_FILES:
        logger.warning("the open-files limit is %d (hard %s): raise it (LimitNOFILE= in a "
                       "systemd unit, ulimit -n) to %d or more", soft, hard, WANTED_OPEN_FILES)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings.log_format, settings.node_id)
    raise_open_files_limit()
    lost = empty_store_problem(settings)  # before opening the store creates it
    app = build_app(settings)
    ssl_context = None
    if settings.tls_cert and settings.tls_key:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
    scheme = "https" if ssl_context else "http"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base_url = f"{scheme}://{host}"
    base_url += f":{settings.port}"
    store = {
        "redis": f"Redis {settings.redis_url}",
        "sqlite": f"embedded store {settings.store_path.resolve()}",
        "memory": "IN-MEMORY STORE: NOTHING SURVIVES A RESTART (trials only)",
    }[settings.store_kind]

    def announce() -> None:
        """Once the app has started (its store checked and opened), before it listens."""
        if lost:
            logger.error(lost)
        print(f"Smart Counter on {base_url} — {store}, data in {settings.data_dir.resolve()}")
        accounts = AccountDirectory(settings.data_dir)
        if args.demo:
            catalog = Catalog.load(ensure_catalog_file(settings.catalog_path))
            creds = ensure_demo_accounts(settings.data_dir, accounts, catalog)
            print(describe(creds, base_url), flush=True)
        elif off := switch_off_demo_accounts(settings.data_dir, accounts):
            logger.warning("demo accounts switched off (start with --demo to use them "
                           "again): %s", ", ".join(off))

    asyncio.run(_serve(app, settings, ssl_context, announce))
    return 0


async def _serve(app: web.Application, settings: Settings, ssl_context, announce) -> None:
    """Serve until SIGTERM or SIGINT; then drain (no new calls, the calls in progress
    end, bounded) while still serving, then stop. A second signal stops at once."""
    # Between requests a connection may idle as long as a first request may take to send
    # its headers (aiohttp's default is an hour): aiohttp closes a kept-alive connection
    # whose next request has not completed its headers by then, the later requests'
    # header deadline (ConnectionGuard gives the first request's).
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=settings.header_timeout_s)
    await runner.setup()
    await asyncio.to_thread(announce)
    # What start-up loaded (models, libraries: ~110,000 objects) lives as long as the
    # node: out of the collector's sight, a full collection takes microseconds instead of
    # the ~70 ms that held the event loop (and every call's media) each time one ran.
    gc.collect()
    gc.freeze()
    guard = ConnectionGuard(settings.header_timeout_s, settings.max_connections_per_address)
    await GuardedSite(runner, settings.host, settings.port, guard,
                      ssl_context=ssl_context).start()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
        stopping.clear()
        logger.info("stopping: draining calls")
        drain = asyncio.create_task(app[DRAIN]())
        forced = asyncio.create_task(stopping.wait())
        await asyncio.wait({drain, forced}, return_when=asyncio.FIRST_COMPLETED)
        for task in (drain, forced):
            task.cancel()
    finally:
        await runner.cleanup()


def _catalog(settings: Settings) -> Catalog:
    return Catalog.load(ensure_catalog_file(settings.catalog_path))


def cmd_staff_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not args.password_stdin:
        print("error: pass the password on standard input with --password-stdin", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    catalog = _catalog(settings)
    unknown = [d for d in args.department if catalog.department(d) is None]
    if unknown:
        known = ", ".join(d.id for d in catalog.departments)
        print(f"error: unknown department(s) {unknown}; known: {known}", file=sys.stderr)
        return 2
    account = AccountDirectory(settings.data_dir).add_staff(
        args.username, password, args.department, args.role, args.display_name
    )
    print(f"added {account.role} {account.username} ({', '.join(account.departments)})")
    return 0


def _set_staff_disabled(args: argparse.Namespace, disabled: bool) -> int:
    account = AccountDirectory(_settings(args).data_dir).set_staff_disabled(
        args.username, disabled=disabled
    )
    state = "disabled (live connections are cut within seconds)" if account.disabled else "enabled"
    print(f"{account.username} {state}")
    return 0


def cmd_staff_disable(args: argparse.Namespace) -> int:
    return _set_staff_disabled(args, disabled=True)


def cmd_staff_enable(args: argparse.Namespace) -> int:
    return _set_staff_disabled(args, disabled=False)


def cmd_staff_reset_password(args: argparse.Namespace) -> int:
    if not args.password_stdin:
        print("error: pass the password on standard input with --password-stdin", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    account = AccountDirectory(_settings(args).data_dir).reset_password(args.username, password)
    print(f"password of {account.username} reset; earlier sign-ins no longer work")
    return 0


def cmd_kiosk_revoke(args: argparse.Namespace) -> int:
    device = AccountDirectory(_settings(args).data_dir).revoke_kiosk(args.kiosk_id)
    print(f"kiosk {device.kiosk_id} revoked (its live connection is cut within seconds)")
    return 0


def cmd_staff_departments(args: argparse.Namespace) -> int:
    settings = _settings(args)
    catalog = _catalog(settings)
    unknown = [d for d in args.department if catalog.department(d) is None]
    if unknown:
        print(f"error: unknown department(s) {unknown}", file=sys.stderr)
        return 2
    account = AccountDirectory(settings.data_dir).set_departments(args.username,
                                                                  args.department)
    print(f"{account.username} now serves {', '.join(account.departments)} (live "
          "connections reconnect with them)")
    return 0


def cmd_kiosk_rotate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _, token = AccountDirectory(settings.data_dir).rotate_kiosk(args.kiosk_id,
                                                             settings.kiosk_token_ttl_s)
    print(f"kiosk {args.kiosk_id} has a new token (the old one stops working, its live "
          "connection is cut within seconds); the new token (shown once):")
    print(token)
    return 0


def cmd_kiosk_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    device, token = AccountDirectory(settings.data_dir).add_kiosk(
        args.kiosk_id, args.site, settings.kiosk_token_ttl_s)
    print(f"added kiosk {device.kiosk_id} at {device.site}; its token (shown once):")
    print(token)
    return 0


def cmd_models_prepare(args: argparse.Namespace) -> int:
    settings = _settings(args)
    models_dir = settings.resolved_models_dir
    manifest = prepare(models_dir, force=args.force)
    infos = check_models(models_dir, settings.antispoof_model)
    for info in infos:
        source = manifest.get(info.name, {}).get("source", "bundled with smartcounter")
        print(f"{info.name}: {info.path} sha256 {info.sha256} (from {source})")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.older_than < 0:
        print("error: --older-than must be 0 or more days", file=sys.stderr)
        return 2
    report = purge(
        AuditLog(settings.audit_dir),
        BlobStore(settings.documents_dir),
        settings.documents_dir / "pages",
        args.older_than * 86400,
        dry_run=args.dry_run,
    )
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {len(report.files)} file(s) of {len(report.sessions)} session(s) closed over "
        f"{args.older_than:g} day(s) ago; {len(set(report.kept_shared))} shared with newer "
        "sessions kept"
    )
    for sha256 in report.files:
        print(f"  {sha256}")
    return 0


def _names(args: argparse.Namespace) -> dict[str, str]:
    return {"en": args.name_en, "zh-Hant": args.name_zh_hant, "zh-Hans": args.name_zh_hans}


def _edit_catalog(args: argparse.Namespace, edit) -> int:
    settings = _settings(args)
    path = ensure_catalog_file(settings.catalog_path)
    catalog = edit(Catalog.load(path))
    catalog.save(path)
    print(f"catalog saved to {path}; running servers pick it up within seconds")
    return 0


def cmd_catalog_list(args: argparse.Namespace) -> int:
    catalog = _catalog(_settings(args))
    for department in catalog.departments:
        print(f"{department.id}: {department.name['en']} / {department.name['zh-Hant']}")
        for service in department.services:
            print(f"  {service.id}: {service.name['en']} / {service.name['zh-Hant']}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        verdict = AuditLog(settings.audit_dir).verify_sync(args.session_id)
    except ValueError as exc:  # not a session id at all
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not verdict.events and verdict.broken is None:
        print(f"error: no audit trail for session {args.session_id}", file=sys.stderr)
        return 2
    if verdict.broken:
        print(f"session {args.session_id}: BROKEN: {verdict.broken}")
        return 1
    events = verdict.events
    print(f"session {args.session_id}: {len(events)} events, chain verified "
          f"(last: {events[-1]['type']}, sha256 {events[-1]['hash']}); {_anchoring(verdict)}")
    return 0


def _anchoring(verdict: Verdict) -> str:
    anchor = verdict.anchor
    if anchor is None:
        return ("no anchor in the ledger (a trail older than the ledger, or whose only event "
                "was written just before a crash), so its end is unchecked")
    said = f"anchored at event {anchor['seq']} (ledger entry {anchor['n']})"
    if verdict.unanchored:
        said += (f", the last {verdict.unanchored} event(s) not yet anchored (written as "
                 "this ran, or just before a crash)")
    head = verdict.ledger_head
    return said + (f"; ledger head: entry {head['n']}, sha256 {head['hash']}" if head else "")


def cmd_audit_verify_all(args: argparse.Namespace) -> int:
    settings = _settings(args)
    scan, verdicts = AuditLog(settings.audit_dir).verify_all_sync()
    broken = [v for v in verdicts if v.broken]
    for verdict in broken:
        print(f"session {verdict.session_id}: BROKEN: {verdict.broken}")
    if scan.problem:
        print(f"ledger: BROKEN: {scan.problem}")
    head = scan.head
    print(f"{len(verdicts)} session(s), {len(broken)} broken; ledger: {scan.entries} "
          "entries checked" + (f", head entry {head['n']} sha256 {head['hash']}" if head else ""))
    return 1 if broken or scan.problem else 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    settings = _settings(args)
    blobs = BlobStore(settings.documents_dir)
    try:
        report = export(
            AuditLog(settings.audit_dir), args.session_id, blobs.path_of,
            RecordingDirectory(settings.recordings_dir).files(args.session_id),
        )
    except ValueError as exc:  # not a session id at all
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not report["events"] and report["break"] is None:
        print(f"error: no audit trail for session {args.session_id}", file=sys.stderr)
        return 2
    out = Path(args.out or f"audit-{args.session_id}.json")
    write_export(report, out)
    state = "verified" if report["verified"] else f"BROKEN: {report['break']}"
    print(f"wrote {out}: {len(report['events'])} events ({state}), {len(report['files'])} "
          f"files, {len(report['recordings'])} recordings")
    return 0 if report["verified"] else 1


def cmd_catalog_add_department(args: argparse.Namespace) -> int:
    return _edit_catalog(args, lambda c: c.add_department(args.department_id, _names(args)))


def cmd_catalog_remove_department(args: argparse.Namespace) -> int:
    return _edit_catalog(args, lambda c: c.remove_department(args.department_id))


def cmd_catalog_add_service(args: argparse.Namespace) -> int:
    return _edit_catalog(
        args, lambda c: c.add_service(args.service_id, args.department, _names(args)))


def cmd_catalog_remove_service(args: argparse.Namespace) -> int:
    return _edit_catalog(args, lambda c: c.remove_service(args.service_id))


def arg(*flags: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One argument of a command, as ``add_argument`` takes it."""
    return flags, options


COMMON = (
    arg("--data-dir", help="data directory (env SMARTCOUNTER_DATA_DIR; ./data)"),
    arg("--config", help="a TOML configuration file (env SMARTCOUNTER_CONFIG)"),
)
STORE_CHOICE = (
    arg("--redis-url", help="the Redis of a deployment of several nodes "
        "(env SMARTCOUNTER_REDIS_URL)"),
    arg("--store", choices=("sqlite", "redis"),
        help="sqlite: DATA_DIR/store.sqlite3 (the default without a Redis URL)"),
)
NAMES = tuple(arg(f"--name-{lang}", required=True, metavar="TEXT")
              for lang in ("en", "zh-hant", "zh-hans"))
PASSWORD_STDIN = arg("--password-stdin", action="store_true",
                     help="read the password from stdin")
DEPARTMENT = arg("--department", required=True, metavar="ID")

GROUPS = {
    "staff": "staff accounts", "kiosk": "kiosk devices", "models": "face models",
    "catalog": "departments and services", "audit": "sessions' audit trails",
    "store": "the store as a projection of the audit trails",
}

# Every command: its words, what it does, its handler, and its arguments (each also
# takes COMMON's).
COMMANDS: tuple[tuple[tuple[str, ...], str, Callable[[argparse.Namespace], int],
                      tuple[tuple[tuple[str, ...], dict[str, Any]], ...]], ...] = (
    (("serve",), "run the server", cmd_serve, (
        arg("--host", help="address to bind (default 127.0.0.1)"),
        arg("--port", type=int, help="port (default 8080)"),
        arg("--redis-url", help="Redis URL for several nodes (env SMARTCOUNTER_REDIS_URL)"),
        arg("--store", choices=("sqlite", "redis", "memory"),
            help="sqlite: DATA_DIR/store.sqlite3 (the default without a Redis URL); memory: "
            "throw-away, nothing survives a restart (env SMARTCOUNTER_STORE)"),
        arg("--node-id", help="this node's id (default: host name)"),
        arg("--demo", action="store_true", help="create and print demo accounts"),
    )),
    (("staff", "add"), "add a staff member or supervisor", cmd_staff_add, (
        arg("username"), arg("--department", action="append", default=[], metavar="ID"),
        arg("--role", choices=ROLES, default="staff"), arg("--display-name"), PASSWORD_STDIN,
    )),
    (("staff", "disable"), "disable an account (cuts its live connections)",
     cmd_staff_disable, (arg("username"),)),
    (("staff", "enable"), "enable a disabled account", cmd_staff_enable, (arg("username"),)),
    (("staff", "set-departments"), "move a staff member to departments",
     cmd_staff_departments, (arg("username"), arg("--department", action="append",
                                                  required=True))),
    (("staff", "reset-password"), "set a new password; revokes sign-ins",
     cmd_staff_reset_password, (arg("username"), PASSWORD_STDIN)),
    (("kiosk", "add"), "register a kiosk; prints its token last", cmd_kiosk_add,
     (arg("kiosk_id"), arg("--site", required=True))),
    (("kiosk", "revoke"), "revoke a kiosk's token (cuts its connection)", cmd_kiosk_revoke,
     (arg("kiosk_id"),)),
    (("kiosk", "rotate"), "give a kiosk a new token (the old one stops working); prints it "
     "last", cmd_kiosk_rotate, (arg("kiosk_id"),)),
    (("models", "prepare"), "convert the shipped face models to fp32 (DATA_DIR/models) and "
     "check them", cmd_models_prepare,
     (arg("--force", action="store_true", help="convert again even if present"),)),
    (("catalog", "list"), "show the catalog", cmd_catalog_list, ()),
    (("catalog", "add-department"), "add a department", cmd_catalog_add_department,
     (arg("department_id"), *NAMES)),
    (("catalog", "remove-department"), "remove a department and its services",
     cmd_catalog_remove_department, (arg("department_id"),)),
    (("catalog", "add-service"), "add a service to a department", cmd_catalog_add_service,
     (arg("service_id"), DEPARTMENT, *NAMES)),
    (("catalog", "remove-service"), "remove a service", cmd_catalog_remove_service,
     (arg("service_id"),)),
    (("audit", "verify"), "check a session's chain, and its end against the anchor ledger "
     "(exit 1 if broken)", cmd_audit_verify, (arg("session_id"),)),
    (("audit", "verify-all"), "check the whole anchor ledger and every trail it or the "
     "directory holds (finds deleted trails; exit 1 if anything is broken)",
     cmd_audit_verify_all, ()),
    (("audit", "export"), "write the chain and the hashes of the session's files to one file",
     cmd_audit_export, (arg("session_id"),
                        arg("--out", help="the file to write (audit-SESSION_ID.json)"))),
    (("store", "check"), "compare the store with the audit trails both ways (exit 1 if they "
     "differ); safe beside a running server",
     lambda args: cmd_store_check(_settings(args)), STORE_CHOICE),
    (("store", "rebuild"), "write what the store lacks of the trails (sessions, documents' "
     "index, cases, decisions, print jobs); the server must be stopped",
     lambda args: cmd_store_rebuild(_settings(args)), STORE_CHOICE),
    (("backup",), "a consistent copy of the embedded store, while it serves",
     lambda args: cmd_backup(_settings(args), args.dest),
     (arg("dest", help="the file to write (or a directory: a dated name)"),)),
    (("purge",), "delete documents, page images and signatures of old closed sessions",
     cmd_purge, (
         arg("--older-than", type=float, required=True, metavar="DAYS",
             help="sessions that ended more than DAYS days ago"),
         arg("--dry-run", action="store_true", help="only list what would go"),
     )),
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smartcounter", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    groups: dict[str, Any] = {}
    for words, text, func, arguments in COMMANDS:
        within = sub
        if len(words) == 2:
            if words[0] not in groups:
                groups[words[0]] = sub.add_parser(words[0], help=GROUPS[words[0]]) \
                    .add_subparsers(dest="action", required=True)
            within = groups[words[0]]
        command = within.add_parser(words[-1], help=text)
        for flags, options in (*COMMON, *arguments):
            command.add_argument(*flags, **options)
        command.set_defaults(func=func)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (DomainError, ConfigError, CatalogError, ModelError, SchemaError, StoreLocked,
            FileNotFoundError, NotDurable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
