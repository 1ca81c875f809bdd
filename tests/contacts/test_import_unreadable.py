"""Files that are partly unreadable: a row we can't read is reported and the rest imported; a file we can't read
to the end is refused before anything is written. Either way the row count never shrinks silently."""


from sqlalchemy import func, select

from app.extensions import db
from app.models import Contact
from app.services.contacts.imports import runs
from tests.factories.imports import import_record, make_csv, write_xlsx_parts


def contact_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Contact))


def phone(index: int) -> str:
    return f"98{index:08d}"


def test_an_unclosed_quote_is_reported_on_its_row_and_every_other_row_imported(app, pages, tmp_path):
    path = tmp_path / "quote.csv"
    lines = ["Name,Phone"] + [f"Person {index},{phone(index)}" for index in range(2, 202)]
    lines[101] = f'"Bunty,{phone(102)}'  # row 102 opens a quote and never closes it
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")

    import_id = pages.run(path)

    record = import_record(app, import_id)
    assert (record.status, record.processed_rows, record.created_count) == ("completed", 200, 199)
    assert contact_count(app) == 199
    [problem] = pages.problems(import_id)
    assert problem[0] == "102" and "quote" in problem[3] and "never closed" in problem[3]


def test_a_quoted_cell_spanning_lines_is_still_one_cell(app, pages, tmp_path):
    path = tmp_path / "address.csv"
    path.write_text(f'Name,Phone,Address\r\nRavi,{phone(1)},"12 MG Road\r\nPune"\r\nAsha,{phone(2)},Delhi\r\n')
    import_id = pages.run(path)
    record = import_record(app, import_id)
    assert (record.processed_rows, record.created_count, record.problem_count) == (2, 2, 0)


def test_an_over_long_field_is_reported_on_its_row_and_the_rest_imported(app, pages, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "BATCH_SIZE", 5)  # the rows before the long one (past the preview) span batches
    rows = [["Name", "Phone"]] + [[f"Person {index}", phone(index)] for index in range(60)]
    rows += [["x" * 200_000, phone(100)]] + [[f"After {index}", phone(200 + index)] for index in range(10)]
    import_id = pages.run(make_csv(tmp_path / "long.csv", rows))

    record = import_record(app, import_id)
    assert (record.status, record.processed_rows, record.created_count) == ("completed", 71, 70)
    assert record.message is None
    [problem] = pages.problems(import_id)
    assert problem[0] == "62" and "longer than" in problem[3]


def test_a_workbook_damaged_part_way_writes_nothing(app, pages, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "BATCH_SIZE", 5)
    cells = "".join(f'<row r="{number}"><c r="A{number}" t="inlineStr"><is><t>{phone(number)}</t></is></c></row>'
                    for number in range(2, 70))
    padding = " " * 300_000  # the damage lies past the part of the sheet the upload's preview reads
    sheet = f'<row r="1"><c r="A1" t="inlineStr"><is><t>Phone</t></is></c></row>{cells}{padding}<row r="70"><c></row>'
    import_id = pages.run(write_xlsx_parts(tmp_path / "damaged.xlsx", sheet, dimension="A1:A70"))

    record = import_record(app, import_id)
    assert record.status == "failed" and "damaged" in record.message and "Nothing was imported" in record.message
    assert (record.processed_rows, record.created_count, contact_count(app)) == (0, 0, 0)
    page = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Nothing was imported" in page

