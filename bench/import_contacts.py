"""Benchmark: contact imports through the code path the UI uses, against the naive way.

Generates a 100,000-row .xlsx (as Excel writes it: shared strings, number cells) and a 1,000,000-row
.csv with realistic mixed phone formats, 10% duplicates and 2% invalid numbers, then times:

  ours   create_import_from_path (sniff, inspect, guess columns) + start_import + run_import, exactly
         what the upload view and the RQ job call: streaming parse, normalise, dedupe, batched upsert
  naive  pandas.read_excel (openpyxl) of the whole .xlsx, then one ORM insert and commit per row, on
         the first --naive-rows rows, extrapolated to the whole file (it would take minutes otherwise)

Each run happens in its own process and its own fresh database, so peak RSS belongs to that run alone.
SQLite by default; --database-url postgresql://… creates (and drops) scratch databases on that server.

    python bench/import_contacts.py [--database-url URL] [--xlsx-rows N] [--csv-rows N] [--naive-rows N]

Prints one line per run, then one final JSON line with rows/s for each file, ours/naive and peak RSS. The
machine has two cores: other work running beside the bench shows as seconds well above cpu_seconds.

    python bench/import_contacts.py --hostile [--hostile-mb N]

instead reads small workbooks that expand to N MB (default 256; issue 16 used 1024 and 100): one huge cell, a huge
shared string table, workbook.xml padded with spaces, a sheet of blank rows without a <dimension>; and the
100,000-row .xlsx. Each goes through our upload (create_import_from_path) and job (run_import), and through
python-calamine opening the sheet for a preview and reading it whole, when it is importable (it is not a dependency:
`pip install --target /tmp/calamine python-calamine==0.9.1` and run with PYTHONPATH=/tmp/calamine). Each run has
its own process, under a 6 GB address-space limit. One line per run, then a final JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
HEADER = ["Customer Name", "Mobile No", "City", "Tags", "Customer ID"]
CITIES = ["Pune", "Mumbai", "Delhi", "Bengaluru", "Chennai", "Kolkata", "Jaipur", "Lucknow", "Indore", "Surat"]
INVALID = ["12345", "N/A", "98765 4321", "+91 55555 55555", "call office", "000000"]


def mobile(index: int) -> int:
    """A distinct valid Indian mobile number per index (a bijection onto 6000000000–9999999999)."""
    return 6_000_000_000 + (index * 2_654_435_761) % 4_000_000_000


def phone_cell(index: int, number: int, for_csv: bool):
    """The same number written the many ways people and Excel write it."""
    text = str(number)
    style = index % 9
    if style == 0:
        return f"91{text}" if for_csv else int(f"91{text}")  # an Excel number cell
    if style == 1:
        return f"+91 {text[:5]} {text[5:]}"
    if style == 2:
        return f"0{text[:5]}-{text[5:]}"
    if style == 3:
        return f"{text[:5]}.{text[5:]}"
    if style == 4:
        return f"(+91) {text[:5]} {text[5:]}"
    if style == 5:
        return f"0091 {text}"
    if style == 6:
        return f"9.1{text}E+11" if for_csv else float(f"91{text}")  # scientific notation / float cell
    if style == 7:
        return f"91{text}.0" if for_csv else text
    return text


def rows(count: int, for_csv: bool):
    """Data rows: every 10th repeats an earlier number, every 50th is invalid, 1% hold two numbers."""
    for index in range(count):
        if index % 50 == 48:
            cell = INVALID[index % len(INVALID)]
        elif index % 10 == 9:
            cell = phone_cell(index + 1, mobile(index - 5), for_csv)  # row index-5's number, another format
        elif index % 100 == 3:
            cell = f"{mobile(index)} / {mobile(index + count)}"
        else:
            cell = phone_cell(index, mobile(index), for_csv)
        tags = "vip" if index % 7 == 0 else ("retail, wholesale" if index % 11 == 0 else "")
        yield [f"Customer {index}", cell, CITIES[index % len(CITIES)], tags, f"C-{index:07d}"]


def write_csv(path: Path, count: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows(count, for_csv=True))


def write_xlsx(path: Path, count: int) -> None:
    """A streaming .xlsx writer producing what Excel produces: a shared string table and a dimension."""
    strings: dict[str, int] = {}
    namespace = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", f'<workbook {namespace} xmlns:r="{REL_NS}"><sheets>'
                                            '<sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>')
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(f'<worksheet {namespace}><dimension ref="A1:E{count + 1}"/><sheetData>'.encode())
            for number, values in enumerate([HEADER, *rows(count, for_csv=False)], start=1):
                sheet.write(_xlsx_row(number, values, strings).encode())
            sheet.write(b"</sheetData></worksheet>")
        with archive.open("xl/sharedStrings.xml", "w") as shared:
            shared.write(f'<sst {namespace} uniqueCount="{len(strings)}">'.encode())
            for text in strings:
                shared.write(f"<si><t>{escape(text)}</t></si>".encode())
            shared.write(b"</sst>")


def _xlsx_row(number: int, values: list, strings: dict[str, int]) -> str:
    cells = []
    for column, value in zip("ABCDE", values, strict=True):
        if value in ("", None):
            continue
        if isinstance(value, str):
            cells.append(f'<c r="{column}{number}" t="s"><v>{strings.setdefault(value, len(strings))}</v></c>')
        else:
            cells.append(f'<c r="{column}{number}"><v>{value!r}</v></c>')
    return f'<row r="{number}">{"".join(cells)}</row>'


REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
CONTENT_TYPES = (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
ROOT_RELS = (f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
             f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK_RELS = (f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                 f'<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
                 f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
                 "</Relationships>")


# ---- hostile workbooks: small files that expand to a lot ------------------------------------------------

def write_hostile(folder: Path, megabytes: int, normal: Path) -> dict[str, Path]:
    """The shapes issue 16 found, streamed into the zip so that writing them never holds them in memory."""
    size = megabytes * 1024 * 1024
    files = {"normal_100k": normal}
    head = ('<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>Phone</t></is></c></row>')
    first = '<row r="2"><c r="A2" t="inlineStr"><is><t>Ravi</t></is></c><c r="B2"><v>919876543210</v></c></row>'
    cell = ('<row r="3"><c r="A3" t="inlineStr"><is><t>', (b"x" * (1 << 20) for _ in range(megabytes)),
            '</t></is></c><c r="B3"><v>919812345678</v></c></row>')
    files["huge_cell"] = _hostile_xlsx(folder / "huge-cell.xlsx", [head, first, *cell])
    count = size // 24
    shared_row = f'<row r="3"><c r="A3" t="s"><v>{count - 1}</v></c><c r="B3"><v>919812345678</v></c></row>'
    strings = (b"".join(b"<si><t>s%09d</t></si>" % index for index in range(start, min(start + 50_000, count)))
               for start in range(0, count, 50_000))
    files["shared_strings"] = _hostile_xlsx(folder / "shared-strings.xlsx", [head, first, shared_row],
                                            shared=['<sst xmlns="' + SHEET_NS + '">', strings, "</sst>"])
    files["padded_workbook"] = _hostile_xlsx(folder / "padded-workbook.xlsx", [head, first],
                                             workbook_padding=megabytes)
    blank = (b"<row/>" * ((1 << 20) // 6) for _ in range(megabytes))
    files["blank_rows"] = _hostile_xlsx(folder / "blank-rows.xlsx", [head, first, blank])
    return files


SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _hostile_xlsx(path: Path, sheet_data: list, shared: list | None = None, workbook_padding: int = 0) -> Path:
    sheet = [f'<worksheet xmlns="{SHEET_NS}"><sheetData>', *sheet_data, "</sheetData></worksheet>"]
    relationships = WORKBOOK_RELS if shared else WORKBOOK_RELS.replace(
        f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>', "")
    padding = (b" " * (1 << 20) for _ in range(workbook_padding))
    workbook = [f'<workbook xmlns="{SHEET_NS}" xmlns:r="{REL_NS}">', padding,
                '<sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>']
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/_rels/workbook.xml.rels", relationships)
        for name, parts in (("xl/workbook.xml", workbook), ("xl/worksheets/sheet1.xml", sheet),
                            ("xl/sharedStrings.xml", shared)):
            if parts:
                with archive.open(name, "w", force_zip64=True) as part:
                    for piece in parts:
                        for chunk in [piece] if isinstance(piece, str | bytes) else piece:
                            part.write(chunk.encode() if isinstance(chunk, str) else chunk)
    return path


def run_upload_and_job(app, path: Path) -> dict:
    """Our upload (sniff and preview) and job (read, count, write), each timed, with peak RSS after each."""
    from app.services.errors import ServiceError
    from bench._common import contact_imports

    contact_import = contact_imports()
    actor = SimpleNamespace(id=None, is_admin=True, email="bench@example.com")
    result = {"baseline_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    with app.app_context():
        try:
            with _timed(result, "upload"):
                record = contact_import.create_import_from_path(path, path.name, None)
        except ServiceError as error:
            return result | {"outcome": f"refused at upload: {error.message}"}
        choice = contact_import.MappingChoice(roles=dict(enumerate(record.mapping["roles"])), region="IN")
        contact_import.start_import(record.id, choice, actor)
        with _timed(result, "job"):
            contact_import.run_import(record.id)
        record = contact_import.get_import(record.id)
        outcome = f"{record.status}: {record.processed_rows} rows, {record.problem_count} problems"
    return result | {"outcome": outcome + (f"; {record.message}" if record.message else "")}


def run_calamine(path: Path) -> dict:
    """python-calamine: open the first sheet and take a preview's rows (the upload), then read every row (the job)."""
    from python_calamine import CalamineWorkbook

    result: dict = {"baseline_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    try:
        with _timed(result, "upload"), CalamineWorkbook.from_path(str(path)) as workbook:
            rows = workbook.get_sheet_by_index(0).iter_rows()
            preview = [row for _, row in zip(range(51), rows, strict=False)]
        with _timed(result, "job"), CalamineWorkbook.from_path(str(path)) as workbook:
            count = sum(1 for _ in workbook.get_sheet_by_index(0).iter_rows())
    except Exception as error:  # calamine raises its own errors, and MemoryError under the limit
        return result | {"outcome": f"{type(error).__name__}: {str(error)[:120]}"}
    return result | {"outcome": f"read {count} rows ({len(preview)} for the preview)"}


@contextmanager
def _timed(result: dict, phase: str):
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        result[f"{phase}_seconds"] = round(time.perf_counter() - started, 2)
        result[f"{phase}_cpu_seconds"] = round(time.process_time() - cpu_started, 2)
        result[f"{phase}_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def hostile(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="import-hostile-"))
    instance = folder / "instance"
    (instance / "imports").mkdir(parents=True)
    normal = folder / "customers-100k.xlsx"
    write_xlsx(normal, args.xlsx_rows)
    files = write_hostile(folder, args.hostile_mb, normal)
    readers = ["ours"] + (["calamine"] if _has_calamine() else [])
    results = {}
    for name, file in files.items():
        for reader in readers:
            copy = instance / "imports" / f"{reader}-{file.name}"
            shutil.copyfile(file, copy)
            results[f"{name}/{reader}"] = run_child(reader, copy, f"sqlite:///{folder / f'{name}-{reader}.db'}",
                                                    instance, 0) | {"file_kb": round(file.stat().st_size / 1024)}
            print(f"{name}/{reader}: {json.dumps(results[f'{name}/{reader}'])}", flush=True)
    print(json.dumps({"bench": "import_contacts_hostile", "expands_to_mb": args.hostile_mb, "runs": results}))


def _has_calamine() -> bool:
    try:
        import python_calamine  # noqa: F401
    except ImportError:
        print("python-calamine is not installed: measuring our reader only", flush=True)
        return False
    return True


# ---- one run per process -------------------------------------------------------------------------------

def make_app(database_url: str, instance: Path):
    os.environ["SECRET_KEY"] = "bench"  # keep the bench from creating instance/secret_key
    from flask_migrate import upgrade

    from app import create_app
    from app.config import Config
    from app.config import database_url as normalised_url

    config = Config()
    config.SQLALCHEMY_DATABASE_URI = normalised_url(database_url)
    config.INSTANCE_DIR = str(instance)
    config.MAX_CONTENT_LENGTH = 1024**3  # the million-row CSV is larger than the web upload limit
    app = create_app(config)
    app.logger.setLevel("WARNING")
    with app.app_context():
        upgrade()
    return app


def run_ours(app, path: Path) -> dict:
    """What the upload view and the RQ job do, in one process, timed from the stored file to the last commit."""
    from bench._common import contact_imports

    contact_import = contact_imports()
    actor = SimpleNamespace(id=None, is_admin=True, email="bench@example.com")
    with app.app_context():
        started, cpu_started = time.perf_counter(), time.process_time()
        record = contact_import.create_import_from_path(path, path.name, None)
        choice = contact_import.MappingChoice(roles=dict(enumerate(record.mapping["roles"])), region="IN")
        contact_import.start_import(record.id, choice, actor)
        contact_import.run_import(record.id)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        record = contact_import.get_import(record.id)
        counts = {name: getattr(record, name) for name in (
            "status", "processed_rows", "created_count", "updated_count", "duplicate_count", "invalid_count")}
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "rows": record.processed_rows, **counts}


def run_naive(app, path: Path, measured_rows: int) -> dict:
    """pandas + openpyxl for the whole file, then insert + commit one row at a time (measured on a slice)."""
    import pandas as pd
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Contact
    from bench._common import phones as phone_service

    phones = phone_service()

    with app.app_context():
        started = time.perf_counter()
        frame = pd.read_excel(path, engine="openpyxl", dtype=object)
        read_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for _, row in frame.head(measured_rows).iterrows():
            phone, _reason = phones.check_phone(row["Mobile No"], "IN")
            if phone is None or db.session.scalar(select(Contact.id).where(Contact.phone == phone)):
                continue
            attributes = {"City": row["City"], "Customer ID": row["Customer ID"]}
            db.session.add(Contact(phone=phone, wa_id=phones.wa_id(phone), name=row["Customer Name"],
                                   attributes=attributes))
            db.session.commit()
        per_row = (time.perf_counter() - started) / measured_rows
    total = read_seconds + per_row * len(frame)
    return {"seconds": total, "rows": len(frame), "read_excel_seconds": read_seconds,
            "measured_rows": measured_rows, "per_row_ms": per_row * 1000}


def child(args: argparse.Namespace) -> None:
    path = Path(args.file)
    if args.phase == "calamine":
        result = run_calamine(path)
    else:
        app = make_app(args.database_url, Path(args.instance))
        if args.phase == "ours":
            result = run_upload_and_job(app, path)
        else:
            result = run_naive(app, path, args.naive_rows) if args.phase == "naive" else run_ours(app, path)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


# ---- the parent: files, fresh databases, one process per run ----------------------------------------------

class Databases:
    """A fresh database per run: a new SQLite file, or a scratch PostgreSQL database dropped afterwards."""

    def __init__(self, base_url: str | None, folder: Path) -> None:
        self.base_url, self.folder, self.created = base_url, folder, []

    def fresh(self, name: str) -> str:
        if not self.base_url or self.base_url.startswith("sqlite"):
            return f"sqlite:///{self.folder / f'{name}.db'}"
        database = f"broadcaster_bench_{name}_{os.getpid()}"
        self._admin(f'DROP DATABASE IF EXISTS "{database}"', f'CREATE DATABASE "{database}"')
        self.created.append(database)
        return self.base_url.rsplit("/", 1)[0] + "/" + database

    def drop_all(self) -> None:
        for database in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{database}"')

    def _admin(self, *statements: str) -> None:
        from sqlalchemy import create_engine, text

        from app.config import database_url

        engine = create_engine(database_url(self.base_url), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
        engine.dispose()


def run_child(phase: str, file: Path, database: str, instance: Path, naive_rows: int) -> dict:
    command = [sys.executable, __file__, "--phase", phase, "--file", str(file), "--database-url", database,
               "--instance", str(instance), "--naive-rows", str(naive_rows)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, preexec_fn=_limit_memory, timeout=900)
    if done.returncode != 0:  # a hostile file may kill a reader outright: that is the measurement
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"outcome": f"exit {done.returncode}: {error[:160]}", "seconds": round(time.perf_counter() - started, 1)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _limit_memory() -> None:
    limit = 6 * 1024**3  # a reader that wants more fails with MemoryError instead of starving the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="import-bench-"))
    instance = folder / "instance"
    (instance / "imports").mkdir(parents=True)
    databases = Databases(args.database_url or os.environ.get("DATABASE_URL"), folder)
    xlsx, csv_file = folder / "customers-100k.xlsx", folder / "customers-1m.csv"
    started = time.perf_counter()
    write_xlsx(xlsx, args.xlsx_rows)
    write_csv(csv_file, args.csv_rows)
    print(f"generated {xlsx.name} ({xlsx.stat().st_size / 1e6:.1f} MB) and {csv_file.name} "
          f"({csv_file.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        results = {}
        for phase, file in (("xlsx", xlsx), ("csv", csv_file), ("naive", xlsx)):
            copy = instance / "imports" / f"{phase}-{file.name}"  # imports delete their file when done
            copy.write_bytes(file.read_bytes())
            results[phase] = run_child(phase, copy, databases.fresh(phase), instance, args.naive_rows)
            print(f"{phase:>5}: {json.dumps(results[phase])}", flush=True)
    finally:
        databases.drop_all()
    print(json.dumps(summary(results, databases.base_url) | {"load_average_at_start": round(load_before, 2)}))


def summary(results: dict, database: str | None) -> dict:
    rate = {phase: result["rows"] / result["seconds"] for phase, result in results.items()}
    return {
        "bench": "import_contacts",
        "database": "postgresql" if database and database.startswith("postgres") else "sqlite",
        "xlsx_rows": results["xlsx"]["rows"], "xlsx_seconds": round(results["xlsx"]["seconds"], 2),
        "xlsx_cpu_seconds": round(results["xlsx"]["cpu_seconds"], 2),
        "xlsx_rows_per_s": round(rate["xlsx"]),
        "csv_rows": results["csv"]["rows"], "csv_seconds": round(results["csv"]["seconds"], 2),
        "csv_rows_per_s": round(rate["csv"]),
        "naive_rows_per_s": round(rate["naive"]),
        "naive_note": f"read_excel on all {results['naive']['rows']} rows, row-by-row inserts timed on the first "
                      f"{results['naive']['measured_rows']} and extrapolated",
        "ratio_ours_to_naive": round(rate["xlsx"] / rate["naive"], 1),
        "peak_rss_mb": {phase: round(result["peak_rss_mb"]) for phase, result in results.items()},
        "goals_met": {"xlsx_under_10s": results["xlsx"]["seconds"] < 10,
                      "at_least_5x_naive": rate["xlsx"] / rate["naive"] >= 5,
                      "csv_peak_rss_under_500mb": results["csv"]["peak_rss_mb"] < 500},
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: DATABASE_URL, else a fresh SQLite file")
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=10_000)
    parser.add_argument("--hostile", action="store_true", help="read hostile workbooks instead (see above)")
    parser.add_argument("--hostile-mb", type=int, default=256, help="what each hostile workbook expands to")
    parser.add_argument("--phase", choices=["xlsx", "csv", "naive", "ours", "calamine"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    arguments = parse_args()
    if arguments.phase:
        child(arguments)
    elif arguments.hostile:
        hostile(arguments)
    else:
        main(arguments)
