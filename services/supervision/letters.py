"""A case's supervision letter (督办函) for download, in the shared layout (shared/letters.py)."""

from __future__ import annotations

from services.supervision.domain import Letter, SupervisionCase
from shared.clock import china_day
from shared.letters import letter_document, letter_heading


def render_letter(case: SupervisionCase, letter: Letter, office_name: str) -> bytes:
    """The letter of `case` as the office prints it, headed with `office_name`."""
    title, opening = letter_heading(case.origin, case.requirements, case.meeting_title, office_name)
    return letter_document(
        office_name,
        title,
        opening,
        letter.number,
        case.department,
        letter.requirements,
        letter.deadline,
        china_day(letter.issued_at),
    )
