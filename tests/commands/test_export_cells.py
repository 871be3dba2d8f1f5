"""CSV cells hold any text the WORM log may carry and still read back as written: every cell
quoted, and a cell a spreadsheet would run as a formula (at its start or after any separator
it may split on) defused with a leading apostrophe."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from commands.export import HEADER, write_csv
from integrations.worm import WormRecord

# What a spreadsheet in any locale may treat as the start of a formula.
STARTS_FORMULA = re.compile(r"(?:^|[,;\t|])\s*[=+\-@\t\r]")
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


def to_csv(records: list[WormRecord]) -> str:
    out = io.StringIO(newline="")
    write_csv(records, out)
    return out.getvalue()


def record(reason: str, pcs_id: str, policy: str) -> WormRecord:
    ts = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    return WormRecord(ts, "acme", pcs_id, 1.5, -0.25, "escalated", reason, policy)


@given(st.lists(st.tuples(text, text, text), min_size=1, max_size=8))
def test_every_row_reads_back_and_no_cell_is_a_formula(rows: list[tuple[str, str, str]]) -> None:
    content = to_csv([record(*r) for r in rows])
    parsed = list(csv.reader(io.StringIO(content, newline="")))
    assert parsed[0] == list(HEADER)
    assert len(parsed) == len(rows) + 1
    for (reason, pcs_id, policy), cells in zip(rows, parsed[1:], strict=True):
        for typed, cell in ((pcs_id, cells[0]), (reason, cells[4]), (policy, cells[5])):
            assert cell == ("'" + typed if STARTS_FORMULA.search(typed) else typed)


def test_a_formula_after_a_locale_separator_is_defused() -> None:
    content = to_csv([record('x;=cmd|" /C calc"!A0', "p1", "v1")])
    assert '"\'x;=cmd|"" /C calc""!A0"' in content
    assert content.splitlines()[1].startswith('"p1",')
