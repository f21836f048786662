"""The ``airwater`` command: one subcommand per job."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from airwater.embedded import MosquittoServer
from core.settings import Settings
from reports import air_rows
from schemas.reports import AirReport, WaterReport
from standards.water import CLASS_NAMES
from storage.credentials import Role

console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("airwater")


def _require_database(settings: Settings) -> str:
    if settings.database_url is None:
        console.print(
            "[red]AIRWATER_DATABASE_URL is not set[/red] (or use `airwater run`, "
            "which starts a private database)"
        )
        raise SystemExit(2)
    return settings.database_url


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.migrate import migrate

    with connect(_require_database(settings)) as conn:
        applied = migrate(conn)
    console.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def cmd_stations_import(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from schemas.stations import StationFileError, read_station_file
    from storage.stations import upsert_stations

    try:
        stations = read_station_file(Path(args.file))
    except (StationFileError, OSError) as exc:
        console.print(f"[red]cannot import:[/red] {exc}")
        return 1
    with connect(_require_database(settings)) as conn:
        created, updated = upsert_stations(conn, stations)
    console.print(f"{args.file}: {created} station(s) created, {updated} updated")
    return 0


def cmd_stations_list(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.stations import list_stations

    with connect(_require_database(settings)) as conn:
        stations = list_stations(conn, kind=args.kind, city_code=args.city_code)
    table = Table("station_id", "name", "kind", "city", "province", "timezone", "active")
    for s in stations:
        table.add_row(
            s.station_id,
            s.name,
            s.kind,
            s.city or "",
            s.province or "",
            s.timezone,
            "yes" if s.active else "no",
        )
    out = Console()
    if not out.is_terminal:
        out = Console(width=240)
    out.print(table)
    return 0


def _write_passwords(path: Path, passwords: dict[str, str]) -> None:
    """user → password as JSON (the format `python -m simulators run --credentials` reads),
    readable by the owner only; merged into an existing file."""
    current: dict[str, str] = {}
    if path.exists():
        current = json.loads(path.read_text(encoding="utf-8"))
    current.update(passwords)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(current, out, indent=2, sort_keys=True)
        out.write("\n")


def cmd_credentials(args: argparse.Namespace, settings: Settings) -> int:
    from airwater import broker_auth
    from core.db import connect
    from storage.credentials import CredentialError, accounts, revoke, stations_without_credentials

    action = args.credentials_command
    with connect(_require_database(settings)) as conn:
        try:
            if action in ("issue", "rotate"):
                ids = list(args.station_ids)
                if getattr(args, "all_missing", False):
                    ids += [i for i in stations_without_credentials(conn) if i not in ids]
                if not ids:
                    console.print("no station to issue credentials for")
                    return 0
                passwords = broker_auth.issue(conn, ids, "station", replace=action == "rotate")
            elif action == "revoke":
                missing = [i for i in args.station_ids if not revoke(conn, i)]
                if missing:
                    console.print(f"[yellow]no active credentials:[/yellow] {', '.join(missing)}")
                passwords = {}
            elif action == "list":
                table = Table("user", "role", "issued", "rotated", "revoked", "broker accepts")
                for a in accounts(conn):
                    table.add_row(
                        a.username,
                        a.role,
                        f"{a.issued_at:%Y-%m-%d %H:%M}",
                        f"{a.rotated_at:%Y-%m-%d %H:%M}" if a.rotated_at else "",
                        f"{a.revoked_at:%Y-%m-%d %H:%M}" if a.revoked_at else "",
                        "yes" if a.usable else "no",
                    )
                Console(width=200).print(table)
                return 0
            else:  # sync
                passwords = {}
        except CredentialError as exc:
            console.print(f"[red]refused:[/red] {exc} (nothing was changed)")
            return 1
        result = broker_auth.sync(conn, settings)
    if passwords:
        if args.output:
            _write_passwords(Path(args.output), passwords)
            console.print(f"{len(passwords)} password(s) written to {args.output} (mode 0600)")
        else:
            for user, password in passwords.items():
                print(f"{user},{password}")
            console.print(
                f"{len(passwords)} password(s) above: shown once, only their hashes are kept"
            )
    console.print(
        f"broker files: {result.users} user(s) in {result.passwd}; "
        + ("broker reloaded (SIGHUP)" if result.reloaded else "no running broker signalled")
    )
    return 0


def _admin_key(data_dir: Path) -> str:
    """The demo's admin key: made once, kept in the data folder (mode 0600)."""
    import secrets

    path = data_dir / "admin-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


MQTT_ROLES: tuple[Role, ...] = ("ingest", "alerts", "simulators")


def _embedded_broker_accounts(
    settings: Settings, database_url: str, broker: MosquittoServer, args: argparse.Namespace
) -> tuple[dict[str, str], Path | None]:
    """Accounts of the demo's broker, from the registry: fresh passwords for the services at
    every start (handed to them in their URL) and for the simulated stations (in a file the
    simulators read); the broker's files written before it starts."""
    from urllib.parse import quote

    from airwater import broker_auth
    from core.db import connect
    from simulators.network import build_network
    from storage.credentials import accounts

    auth_settings = settings.model_copy(update={"broker_auth_dir": broker.folder})
    credentials_file: Path | None = None
    passwords: dict[str, str] = {}
    with connect(database_url) as conn:
        services = broker_auth.ensure_services(conn, MQTT_ROLES)
        if args.simulate:
            ids = [s.station_id for s in build_network(cities=args.cities)]
            existing = {a.username for a in accounts(conn) if a.revoked_at is None}
            passwords = broker_auth.issue(conn, [i for i in ids if i not in existing], "station")
            passwords |= broker_auth.issue(
                conn, [i for i in ids if i in existing], "station", replace=True
            )
            credentials_file = broker.folder / "simulated-stations.json"
            credentials_file.unlink(missing_ok=True)
            _write_passwords(credentials_file, passwords)
        broker_auth.write_broker_files(conn, auth_settings)
    log.info(
        "broker accounts: %d service(s), %d simulated station(s); anonymous clients refused",
        len(services),
        len(passwords),
    )
    urls = {
        role: f"mqtt://{role}:{quote(password, safe='')}@127.0.0.1:{broker.port}"
        for role, password in services.items()
    }
    return urls, credentials_file


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Start what is missing (private database and broker), migrate, run the components;
    a component that exits is restarted, one that keeps exiting stops the run (exit 1)."""
    from airwater.embedded import PostgresServer
    from airwater.supervisor import Component, ComponentFailed, Supervisor
    from core.db import connect
    from storage.migrate import migrate

    started: list[PostgresServer | MosquittoServer] = []
    supervisor = Supervisor()
    env = dict(os.environ)
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if settings.database_url is None:
            postgres = PostgresServer(settings.data_dir / "postgres")
            postgres.start()
            started.append(postgres)
            env["AIRWATER_DATABASE_URL"] = postgres.url
        with connect(env["AIRWATER_DATABASE_URL"]) as conn:
            applied = migrate(conn)
        log.info("database ready (%d migration(s) applied)", len(applied))
        env.setdefault("AIRWATER_ADMIN_KEY", _admin_key(settings.data_dir))
        env.setdefault("AIRWATER_HTTP_PORT", str(settings.http_port))
        network = ["--cities", str(args.cities)]
        if args.simulate:
            # the simulated national network: registered, its last year backfilled through
            # the bulk path (a re-run skips what is stored), then publishing live over MQTT
            subprocess.run(
                [sys.executable, "-m", "simulators", "register", *network], env=env, check=True
            )
        # per-service MQTT URL: the embedded broker refuses anonymous clients
        mqtt_urls: dict[str, str] = {role: env.get("AIRWATER_MQTT_URL", "") for role in MQTT_ROLES}
        station_credentials: Path | None = None
        if settings.mqtt_url is None:
            mosquitto = MosquittoServer(settings.data_dir / "mosquitto", auth=True)
            mqtt_urls, station_credentials = _embedded_broker_accounts(
                settings, env["AIRWATER_DATABASE_URL"], mosquitto, args
            )
            mosquitto.start()
            started.append(mosquitto)
            env["AIRWATER_MQTT_URL"] = mosquitto.url
        for module in ("ingest", "alerts", "api"):
            mqtt_url = mqtt_urls.get(module, env["AIRWATER_MQTT_URL"])
            supervisor.start(
                Component(
                    module, [sys.executable, "-m", module], {**env, "AIRWATER_MQTT_URL": mqtt_url}
                )
            )
        if args.simulate:
            simulators_env = {**env, "AIRWATER_MQTT_URL": mqtt_urls["simulators"]}
            if station_credentials is not None:
                network_live = [*network, "--credentials", str(station_credentials)]
            else:
                network_live = network
            last_year = str(time.localtime().tm_year - 1)
            simulators = [sys.executable, "-m", "simulators"]
            backfill = [*simulators, "backfill", "--year", last_year, *network]
            supervisor.start(Component("backfill", backfill, simulators_env, one_shot=True))
            live = [*simulators, "run", *network_live]
            supervisor.start(Component("simulators", live, simulators_env))
        broker_line = env["AIRWATER_MQTT_URL"].split("@")[-1]
        if station_credentials is not None:
            broker_line += (
                f"; no anonymous clients; station passwords in {station_credentials}, "
                "more with `airwater stations credentials issue ID`"
            )
        console.print(
            "[bold green]airwater is running[/bold green]\n"
            f"  dashboard http://127.0.0.1:{env['AIRWATER_HTTP_PORT']}/\n"
            f"  API       http://127.0.0.1:{env['AIRWATER_HTTP_PORT']}/docs\n"
            f"  admin key {env['AIRWATER_ADMIN_KEY']}\n"
            f"  database  {env['AIRWATER_DATABASE_URL']}\n"
            f"  broker    {broker_line}  (publish to stations/<id>/readings)\n"
            f"  metrics   http://127.0.0.1:{settings.metrics_port}/metrics (ingest), "
            f"/metrics (API)\n"
            "Press Ctrl-C to stop."
        )
        while not stop_requested:
            supervisor.step()
            time.sleep(0.5)
    except ComponentFailed:
        return 1  # the supervisor logged which component and why
    finally:
        console.print("stopping…")
        supervisor.stop()
        for service in reversed(started):
            service.stop()
    return 0


def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_air(report: AirReport, level: str) -> None:
    out = Console() if Console().is_terminal else Console(width=200)
    target = "" if report.parameter != "pm25" else "   targets: national < 28 (2027), < 25 (2035)"
    out.print(
        f"[bold]{report.parameter.upper()} {report.year}[/bold] — annual limits "
        f"{report.standard} (Grade II {_fmt(report.annual_limit, 0)} {report.unit}); "
        f"24-hour limits {', '.join(report.daily_limit_standards)}{target}"
    )
    table = Table(
        "level",
        "id",
        "name",
        "annual mean",
        "valid days",
        f"P{report.national.percentile_rank:g}",
        "days > 24h limit",
        "meets Grade II",
        "gap to 28",
        "gap to 25",
        "coverage",
    )
    for row in air_rows(report, level):  # type: ignore[arg-type]
        style = None if row.coverage.valid else "dim"
        table.add_row(
            row.level,
            row.id,
            row.name,
            _fmt(row.annual_mean),
            str(row.valid_days),
            _fmt(row.percentile),
            _fmt(row.days_over_24h_limit),
            _fmt(row.meets_grade_ii),
            _fmt(row.gap_to_2027_target),
            _fmt(row.gap_to_2035_target),
            ("valid" if row.coverage.valid else "; ".join(row.coverage.reasons[:2])),
            style=style,
        )
    out.print(table)
    out.print(
        f"cities meeting Grade II: {report.cities_meeting_grade_ii} of "
        f"{report.cities_assessed} assessed ({_fmt(report.share_cities_meeting_grade_ii)} %)"
    )


def _print_water(report: WaterReport) -> None:
    out = Console() if Console().is_terminal else Console(width=200)
    out.print(
        f"[bold]Surface water {report.year}[/bold] ({report.standard}): "
        f"{report.sections_assessed} sections assessed, Class I–III "
        f"{_fmt(report.excellent_share)} % (target {report.excellent_share_target:g} % by "
        f"2027: {'met' if report.meets_target else 'not met'}), worse than V "
        f"{_fmt(report.worse_than_v_share)} %"
    )
    dist = Table(*report.distribution.keys(), title="class distribution")
    dist.add_row(*(str(v) for v in report.distribution.values()))
    out.print(dist)
    if report.basins:
        basins = Table(
            "basin", "sections", "I–III %", "worse than V %", "grade / class", title="basins"
        )
        for b in report.basins:
            basins.add_row(
                b.basin,
                str(b.sections),
                _fmt(b.excellent_share),
                _fmt(b.worse_than_v_share),
                b.grade or (f"Class {CLASS_NAMES[b.water_class]}" if b.water_class else "–"),
            )
        out.print(basins)
    sections = Table("section", "name", "basin", "class", "deciding", "method", "months")
    for s in report.sections:
        sections.add_row(
            s.station_id,
            s.name,
            s.basin or "",
            s.class_name or "–",
            ", ".join(s.deciding_parameters),
            s.method,
            str(s.months_with_data),
        )
    out.print(sections)


def _print_json(reports: Sequence[BaseModel], trend: Sequence[BaseModel]) -> None:
    """The same document as GET /v1/compliance/…: the reports and, for a range, the trend."""
    print(
        json.dumps(
            {
                "reports": [r.model_dump(mode="json") for r in reports],
                "trend": [t.model_dump(mode="json") for t in trend],
            },
            ensure_ascii=False,
            indent=2,
        )
    )


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from reports import (
        AIR_CSV_COLUMNS,
        WATER_CSV_COLUMNS,
        air_csv_rows,
        air_report,
        air_trend_point,
        water_csv_rows,
        water_report,
        water_trend_point,
        write_csv,
    )

    years = list(range(args.year, (args.to or args.year) + 1))
    with connect(_require_database(settings)) as conn:
        if args.kind == "air":
            reports_air = [air_report(conn, y, args.parameter) for y in years]
            if args.format == "json":
                _print_json(
                    reports_air, [air_trend_point(r) for r in reports_air] if len(years) > 1 else []
                )
            elif args.format == "csv":
                write_csv(sys.stdout, AIR_CSV_COLUMNS, air_csv_rows(reports_air, args.level))
            else:
                for report in reports_air:
                    _print_air(report, args.level)
        else:
            reports_water = [water_report(conn, y) for y in years]
            if args.format == "json":
                _print_json(
                    reports_water,
                    [water_trend_point(r) for r in reports_water] if len(years) > 1 else [],
                )
            elif args.format == "csv":
                write_csv(sys.stdout, WATER_CSV_COLUMNS, water_csv_rows(reports_water))
            else:
                for water in reports_water:
                    _print_water(water)
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.importer import import_files

    database_url = _require_database(settings)
    paths = [Path(p) for p in args.files]
    try:
        summary = import_files(
            database_url,
            paths,
            fmt=args.format,
            batch_rows=args.batch_rows,
            show_progress=not args.no_progress and console.is_terminal,
            jobs=args.jobs,
        )
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: every committed batch is kept; run the same "
            "command again to resume"
        )
        return 130
    table = Table("", "count", title="import summary", title_justify="left")
    table.add_row("files", f"{summary.files:,}")
    table.add_row("  imported now", f"{summary.files_imported:,}")
    table.add_row("  already imported (skipped)", f"{summary.files_already_imported:,}")
    table.add_row("  unreadable", f"{len(summary.files_failed):,}")
    if summary.stations_created or summary.stations_updated or summary.stations_rejected:
        table.add_row("stations created", f"{summary.stations_created:,}")
        table.add_row("stations updated", f"{summary.stations_updated:,}")
        table.add_row("station rows rejected", f"{summary.stations_rejected:,}")
    table.add_row("readings stored", f"{summary.stored:,}")
    table.add_row("duplicates (already stored)", f"{summary.duplicates:,}")
    table.add_row("empty cells (no reading)", f"{summary.empty:,}")
    table.add_row("derived values skipped (*_24h, *_8h, AQI)", f"{summary.derived_skipped:,}")
    table.add_row("dead letters (rejected readings)", f"{summary.rejected.total():,}")
    for reason, n in summary.rejected.most_common():
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row(
        "time",
        f"{summary.seconds:,.1f} s ({summary.readings_per_s:,.0f} readings/s, "
        f"{summary.jobs} job(s))",
    )
    console.print(table)
    for failed in summary.files_failed:
        console.print(f"[red]not imported:[/red] {failed}")
    return 1 if summary.files_failed else 0


# drop_chunks removes whole chunks whose every row is older than the cutoff (TimescaleDB, any
# licence); the daily rollups, which the reports read, are a plain table and stay.
def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    from core.db import connect
    from storage.retention import drop_old_chunks, old_chunks

    ages = {"readings": args.older_than, "readings_hourly": args.hourly_older_than}
    with connect(_require_database(settings), autocommit=True) as conn:
        for table, age in ages.items():
            if age is None:
                continue
            chunks = (old_chunks if args.dry_run else drop_old_chunks)(conn, table, age)
            verb = "would drop" if args.dry_run else "dropped"
            console.print(f"{table}: {verb} {len(chunks)} chunk(s) older than {age}")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.__main__ import main as ingest_main

    return ingest_main([])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airwater",
        description="Air and surface-water monitoring against the Chinese standards and the "
        "national targets. Configuration: AIRWATER_* environment variables "
        "(AIRWATER_DATABASE_URL, AIRWATER_MQTT_URL, …).",
    )
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run everything for a demo: private database and broker "
        "(unless AIRWATER_DATABASE_URL / AIRWATER_MQTT_URL are set), "
        "migrations, the ingest worker, alert delivery, the API and dashboard, and a "
        "simulated national network with its last year backfilled",
    )
    run.add_argument(
        "--no-simulate",
        dest="simulate",
        action="store_false",
        help="do not start the simulated station network",
    )
    run.add_argument(
        "--cities",
        type=int,
        default=30,
        help="cities of the simulated network (3 air stations each; default 30)",
    )
    run.set_defaults(handler=cmd_run)

    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(handler=cmd_migrate)

    ingest = sub.add_parser("ingest", help="run one ingest worker (same as python -m ingest)")
    ingest.set_defaults(handler=cmd_ingest)

    report = sub.add_parser(
        "report", help="annual compliance reports (HJ 663 aggregation, GB 3095 / GB 3838)"
    )
    report.add_argument("kind", choices=["air", "water"])
    report.add_argument("--year", type=int, required=True, help="the (first) year")
    report.add_argument("--to", type=int, help="last year of a multi-year trend")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument(
        "--parameter",
        default="pm25",
        choices=["pm25", "pm10", "so2", "no2"],
        help="air pollutant (default pm25)",
    )
    report.add_argument(
        "--level",
        default="city",
        choices=["national", "city", "station", "all"],
        help="air rows to show besides the national value (default city)",
    )
    report.set_defaults(handler=cmd_report)

    importer_files = sub.add_parser(
        "import",
        help="bulk import of reading files and station lists (resumable, idempotent)",
        description="Import readings through the ingest rules and the batch writer. "
        "Formats (detected from the extension and the header): "
        "long CSV with header station,parameter,ts,value (station_id accepted; ts ISO 8601, "
        "without offset = the station's timezone; parameters as in the catalogue, aliases "
        "such as PM2.5 accepted; values in the stored unit); Parquet with the same columns; "
        "the wide hourly layout of the national air network, one file per day "
        "(date,hour,type,<station codes>…: date YYYYMMDD, hour 0-23 in the station's local "
        "time (Asia/Shanghai), hour H = the hour starting at H:00; type rows PM2.5, PM10, "
        "SO2, NO2, O3 (µg/m³) and CO (mg/m³) are readings, *_24h, *_8h and AQI rows are "
        "derived and skipped, an empty cell is no reading); a station list "
        "(code,name,city,longitude,latitude or 监测点编码,监测点名称,城市,经度,纬度), which "
        "creates or updates air stations and is imported before the readings. "
        "Rejected readings become dead letters (source 'import') with a reason. A journal "
        "(table imports) keyed by each file's SHA-256 makes a re-run skip finished files and "
        "resume an interrupted one after its last committed batch. Exit code 1 if a file "
        "could not be read; bad rows never stop the import.",
    )
    importer_files.add_argument("files", nargs="+", metavar="FILE")
    importer_files.add_argument(
        "--format",
        choices=["long", "parquet", "wide", "stations"],
        help="the layout of every FILE (default: detected per file)",
    )
    importer_files.add_argument(
        "--batch-rows",
        type=int,
        default=100_000,
        help="readings per transaction for long CSV and Parquet (default 100000); a wide "
        "day file is written in one transaction",
    )
    importer_files.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        metavar="N",
        help="files written at once, each over its own database connection (default: the "
        "cores, at most 4); 1 = one file after the other",
    )
    importer_files.add_argument(
        "--no-progress", action="store_true", help="no progress bar (logs and summary only)"
    )
    importer_files.set_defaults(handler=cmd_import)

    retention = sub.add_parser(
        "retention",
        help="drop raw readings (and hourly rollups) older than an age, whole chunks at a "
        "time (drop_chunks); daily rollups and so the reports are kept. Run it from cron.",
    )
    retention.add_argument(
        "--older-than", required=True, help="age of readings to drop, e.g. '5 years'"
    )
    retention.add_argument(
        "--hourly-older-than", help="age of hourly rollups to drop (default: keep them)"
    )
    retention.add_argument("--dry-run", action="store_true", help="list, do not drop")
    retention.set_defaults(handler=cmd_retention)

    stations = sub.add_parser("stations", help="the station registry")
    stations_sub = stations.add_subparsers(dest="stations_command", required=True, metavar="ACTION")
    importer = stations_sub.add_parser(
        "import",
        help="create or update stations from a CSV (header: station_id,name,kind,"
        "waterbody,city,city_code,province,latitude,longitude,timezone,reading_interval_s,"
        "active) or a JSON array file",
    )
    importer.add_argument("file", help="a .csv or .json file")
    importer.set_defaults(handler=cmd_stations_import)
    lister = stations_sub.add_parser("list", help="list stations")
    lister.add_argument("--kind", choices=["air", "surface_water", "sea", "groundwater"])
    lister.add_argument("--city-code")
    lister.set_defaults(handler=cmd_stations_list)

    creds = stations_sub.add_parser(
        "credentials",
        help="broker accounts of stations: each logs in with its station id and may publish "
        "only under stations/<its id>/; the broker's password and ACL files are regenerated "
        "from the registry and the broker reloaded (SIGHUP) without dropping other clients",
    )
    creds_sub = creds.add_subparsers(dest="credentials_command", required=True, metavar="ACTION")
    for name, text in (
        ("issue", "issue credentials to stations that have none (or were revoked)"),
        ("rotate", "replace stations' passwords (the old ones stop working at once)"),
    ):
        action = creds_sub.add_parser(name, help=text)
        action.add_argument("station_ids", nargs="*", metavar="ID")
        action.add_argument(
            "--output",
            metavar="FILE",
            help="write the new passwords to FILE as JSON {station_id: password} (mode 0600, "
            "merged into an existing file) instead of printing station_id,password lines",
        )
        if name == "issue":
            action.add_argument(
                "--all-missing",
                action="store_true",
                help="every active station without credentials",
            )
        action.set_defaults(handler=cmd_credentials)
    revoker = creds_sub.add_parser("revoke", help="revoke stations' credentials")
    revoker.add_argument("station_ids", nargs="+", metavar="ID")
    revoker.set_defaults(handler=cmd_credentials)
    creds_sub.add_parser("list", help="list broker accounts").set_defaults(handler=cmd_credentials)
    creds_sub.add_parser(
        "sync",
        help="regenerate the broker's files from the registry (e.g. after stations were "
        "deactivated) and reload the broker",
    ).set_defaults(handler=cmd_credentials)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.handler(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
