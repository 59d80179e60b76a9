"""The offices' names (shared/offices.py): one table of short and full names, and the
deployment's own letter headings wherever a letter is printed, downloaded or e-mailed."""

from __future__ import annotations

import io
from datetime import date, datetime
from uuid import UUID

from docx import Document

from services.notifications.attachments import CaseHeading, letter_file
from services.supervision.settings import SupervisionSettings
from shared.clock import CHINA
from shared.contracts import LetterIssuedV1
from shared.offices import OFFICE_NAMES, OFFICES, office_full_name, office_name

LETTER = LetterIssuedV1(
    case_id=UUID("0f7e2d10-0000-4000-8000-000000000009"),
    office="yanji",
    department="延吉市住房和城乡建设局",
    number="延市政协督〔2020〕3号",
    year=2020,
    sequence=3,
    deadline=date(2020, 8, 31),
    requirements="请于限期内整改并书面报告",
    issued_at=datetime(2020, 7, 15, 9, 0, tzinfo=CHINA),
)
HEADING = CaseHeading("outcome", "老旧小区改造", "老旧小区改造专题协商会")


def first_line(document: bytes) -> str:
    return str(Document(io.BytesIO(document)).paragraphs[0].text)


def test_every_office_has_a_short_and_a_full_name() -> None:
    assert office_name("yanbian") == "延边州政协" == OFFICE_NAMES["yanbian"]
    assert office_full_name("yanbian") == "政协延边朝鲜族自治州委员会"
    assert set(OFFICE_NAMES) == set(OFFICES)


def test_an_office_not_in_the_list_is_named_by_its_code() -> None:
    assert office_name("newtown") == "newtown"
    assert office_full_name("newtown") == "政协newtown委员会"


def test_the_deployments_own_full_name_comes_first_and_an_empty_one_is_not_taken() -> None:
    assert (
        office_full_name("yanji", {"yanji": "政协延吉市第十届委员会"}) == "政协延吉市第十届委员会"
    )
    assert office_full_name("yanji", {"yanji": ""}) == "政协延吉市委员会"
    assert office_full_name("yanji", {"tumen": "政协图们市委员会办公室"}) == "政协延吉市委员会"


def test_supervisions_headings_and_the_e_mailed_letter_follow_the_same_setting() -> None:
    own = {"yanji": "政协延吉市第十届委员会"}
    assert SupervisionSettings(office_names=own).office_name("yanji") == own["yanji"]
    assert SupervisionSettings().office_name("yanji") == "政协延吉市委员会"
    assert first_line(letter_file(LETTER, HEADING, own).content) == own["yanji"]
    assert first_line(letter_file(LETTER, HEADING, {}).content) == "政协延吉市委员会"
