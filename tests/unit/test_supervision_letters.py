"""The letters: a referral's says what it is and cites no meeting, an outcome's names its
meeting (in the DOCX and in the PDF it converts to); numbers follow the letters' dates."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from uuid import UUID

import pytest
from docx import Document
from eventsourcing.persistence import Tracking

from demo.load import letters_in_date_order
from demo.scenario import generate
from services.supervision.application import SupervisionApplication
from services.supervision.consumers import upstream_policy
from services.supervision.domain import (
    CaseRuleBroken,
    LetterRegister,
    SupervisionCase,
    case_id_for_outcome,
    case_id_for_referral,
)
from services.supervision.letters import render_letter
from shared.clock import CHINA
from shared.letters import REFERRAL_TITLE, TITLE
from shared.process import UpstreamProcessor
from tests.support.serving import serving
from tests.unit.conftest import IN_MEMORY
from tests.unit.test_supervision_application import (
    NOW,
    anyone,
    conclusion,
    delivered,
    referral,
)


@pytest.fixture
async def supervision() -> AsyncIterator[SupervisionApplication]:
    app = SupervisionApplication(env=IN_MEMORY)
    async with serving(app):
        yield app


def opened_from_upstream(app: SupervisionApplication) -> tuple[UUID, UUID]:
    """A referral of Tumen's and an outcome of Yanji's meeting, opened from their events."""
    screening = referral()
    meeting = conclusion("延吉市住房和城乡建设局")
    processor = UpstreamProcessor(app, upstream_policy(app))
    screened = delivered(1, screening, "tumen", event_id="screening-1")
    processor.apply([screened], Tracking("INTAKE", 1))
    processor.apply([delivered(1, meeting, "yanji")], Tracking("MEETINGS", 1))
    return (
        case_id_for_referral(screening.issue_id, "screening-1"),
        case_id_for_outcome(meeting.outcomes[0].outcome_id),
    )


async def letter_of(app: SupervisionApplication, case_id: UUID, day: int = 15) -> bytes:
    issued_at = datetime(2020, 7, day, 9, 0, tzinfo=CHINA)
    case, letter, _ = await app.issue_letter(
        case_id, "请于限期内整改并书面报告", date(2020, 8, 31), None, issued_at, NOW, anyone
    )
    return render_letter(case, letter, app.config.office_name(case.office))


def docx_text(document: bytes) -> list[str]:
    return [p.text for p in Document(io.BytesIO(document)).paragraphs]


async def test_a_referrals_letter_says_which_issue_was_referred_and_cites_no_meeting(
    supervision: SupervisionApplication,
) -> None:
    referred, _ = opened_from_upstream(supervision)
    text = docx_text(await letter_of(supervision, referred))

    assert text[:3] == ["政协图们市委员会", REFERRAL_TITLE, "图市政协督〔2020〕1号"]
    assert "图们市城市管理局：" in text
    assert text[4] == (
        "政协图们市委员会在“有事来商量”活动中收集的群众反映问题“农贸市场周边占道经营”，"
        "经筛选交由你单位办理，请按要求认真落实："
    )
    assert not any("会议" in line for line in text)


async def test_an_outcomes_letter_names_the_meeting_that_agreed_it(
    supervision: SupervisionApplication,
) -> None:
    _, outcome = opened_from_upstream(supervision)
    text = docx_text(await letter_of(supervision, outcome))

    assert text[1] == TITLE
    assert text[4] == (
        "根据“有事来商量”协商会议《老旧小区改造专题协商会》议定事项，"
        "现将下列议题交由你单位办理，请按要求认真落实："
    )


def pdf_text(document: bytes, folder: Path) -> str:
    folder.mkdir()
    source = folder / "letter.docx"
    source.write_bytes(document)
    # A profile of its own: a LibreOffice another process runs would take the conversion.
    profile = (folder / "profile").as_uri()
    subprocess.run(
        ["libreoffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to",
         "pdf", "--outdir", str(folder), str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    found = subprocess.run(
        ["pdftotext", "-layout", str(folder / "letter.pdf"), "-"],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return "".join(found.stdout.split())  # lines wrap where the page ends: compare unbroken


@pytest.mark.skipif(
    not (shutil.which("libreoffice") and shutil.which("pdftotext")),
    reason="LibreOffice and poppler-utils are not installed",
)
async def test_both_letters_read_right_once_converted_to_pdf(
    supervision: SupervisionApplication, tmp_path: Path
) -> None:
    referred, outcome = opened_from_upstream(supervision)
    referral_pdf = pdf_text(await letter_of(supervision, referred), tmp_path / "referral")
    outcome_pdf = pdf_text(await letter_of(supervision, outcome), tmp_path / "outcome")

    assert REFERRAL_TITLE in referral_pdf and "“农贸市场周边占道经营”" in referral_pdf
    assert "会议" not in referral_pdf
    assert TITLE in outcome_pdf and "《老旧小区改造专题协商会》" in outcome_pdf
    assert "请于2020年8月31日前将办理情况书面报送" in outcome_pdf


# --- numbers follow dates --------------------------------------------------------------------


def test_the_register_refuses_a_letter_dated_before_the_last_numbered_one() -> None:
    register = LetterRegister(office="yanji", year=2020)
    register.assign(UUID(int=1), date(2020, 3, 25))
    register.assign(UUID(int=2), date(2020, 3, 25))  # the same day: the next number
    with pytest.raises(CaseRuleBroken) as refused:
        register.assign(UUID(int=3), date(2020, 3, 24))
    assert refused.value.field == "issued_at"
    assert "第2号督办函已于2020-03-25发出" in refused.value.reason
    assert "number 2 of 2020 is dated 2020-03-25" in refused.value.reason
    assert register.last_sequence == 2
    register.assign(UUID(int=3), date(2020, 4, 23))
    assert register.last_sequence == 3


async def test_letter_numbers_follow_their_dates_and_a_back_dated_letter_stores_nothing(
    supervision: SupervisionApplication,
) -> None:
    cases = []
    for _ in range(3):
        meeting = conclusion("延吉市住房和城乡建设局")
        processor = UpstreamProcessor(supervision, upstream_policy(supervision))
        position = (processor.max_tracking_id("MEETINGS") or 0) + 1
        processor.apply([delivered(position, meeting, "yanji")], Tracking("MEETINGS", position))
        cases.append(case_id_for_outcome(meeting.outcomes[0].outcome_id))

    await letter_of(supervision, cases[0], day=3)
    await letter_of(supervision, cases[1], day=20)
    with pytest.raises(CaseRuleBroken) as refused:
        await letter_of(supervision, cases[2], day=10)
    assert refused.value.field == "issued_at"
    late: SupervisionCase = supervision.get_case(cases[2])
    assert late.letters == [] and late.version == 1
    await letter_of(supervision, cases[2], day=20)

    numbered = sorted(
        (supervision.get_case(c).letters[0] for c in cases), key=lambda letter: letter.sequence
    )
    assert [(x.number, x.issued_at.day) for x in numbered] == [
        ("延市政协督〔2020〕1号", 3),
        ("延市政协督〔2020〕2号", 20),
        ("延市政协督〔2020〕3号", 20),
    ]


def test_the_demo_issues_each_offices_letters_one_after_another_in_date_order() -> None:
    cases = generate().cases
    before = letters_in_date_order(cases)
    dated = {
        f"case-{case.key}-{n}-{step.action}": (case.office, step.at)
        for case in cases
        for n, step in enumerate(case.steps)
        if step.action == "letters"
    }
    assert set(before) == set(dated) and len(dated) > 100
    after = {earlier: key for key, earlier in before.items() if earlier is not None}
    for office in {office for office, _ in dated.values()}:
        (first,) = [k for k, e in before.items() if e is None and dated[k][0] == office]
        chain = [first]
        while chain[-1] in after:
            chain.append(after[chain[-1]])
        assert {dated[k][0] for k in chain} == {office}
        assert len(chain) == sum(1 for o, _ in dated.values() if o == office)
        days = [dated[k][1] for k in chain]
        assert days == sorted(days)
