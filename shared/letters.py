"""The printable supervision letter (督办函) as a DOCX document: an outcome's letter
(议政协商会议议题办理情况督办函) names its meeting; a referral's (群众反映问题交办督办函) says
which issue the office referred to the department, without a meeting it never had.

Shared because two services print the same letter: supervision for its download, from the
case, and notifications for the e-mail attachment, from the event that issued it.
"""

from __future__ import annotations

import io
import re
from datetime import date

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.text.run import Run

TITLE = "议政协商会议议题办理情况督办函"
REFERRAL_TITLE = "群众反映问题交办督办函"
DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
"""Characters a DOCX (XML 1.0) cannot hold; typed-in requirements may carry them."""


def chinese_date(day: date) -> str:
    """A day as letters write it (中文日期), e.g. 2020年7月2日."""
    return f"{day.year}年{day.month}月{day.day}日"


def _styled(run: Run, size: float, font: str = "仿宋", bold: bool = False) -> None:
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.name = font
    # Word takes the font of Chinese characters from the East Asian slot, not from `name`.
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), font)


def _line(
    document: Document,
    text: str,
    size: float = 16,
    font: str = "仿宋",
    bold: bool = False,
    align: WD_ALIGN_PARAGRAPH | None = None,
    indent: bool = False,
) -> None:
    paragraph = document.add_paragraph()
    if align is not None:
        paragraph.alignment = align
    if indent:
        paragraph.paragraph_format.first_line_indent = Pt(size * 2)
    _styled(paragraph.add_run(NOT_IN_XML.sub("", text)), size, font, bold)


def letter_heading(
    origin: str, subject: str, meeting_title: str | None, office_name: str
) -> tuple[str, str]:
    """The letter's title and opening sentence: what the letter is about (`subject`: what the
    case was opened for; a referral's is the issue referred)."""
    if origin == "referral":
        return REFERRAL_TITLE, (
            f"{office_name}在“有事来商量”活动中收集的群众反映问题“{subject}”，"
            "经筛选交由你单位办理，请按要求认真落实："
        )
    meeting = "“有事来商量”协商会议"
    if meeting_title:
        meeting += f"《{meeting_title}》"
    return TITLE, f"根据{meeting}议定事项，现将下列议题交由你单位办理，请按要求认真落实："


def letter_document(
    office_name: str,
    title: str,
    opening: str,
    number: str,
    department: str,
    requirements: str,
    deadline: date,
    issued_on: date,
) -> bytes:
    """The letter as the office prints it, from its fields alone: heading, number,
    addressee, requirements, deadline, the office's name and the date."""
    document = Document()
    center, right = WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.RIGHT
    _line(document, office_name, size=22, font="宋体", bold=True, align=center)
    _line(document, title, size=22, font="宋体", bold=True, align=center)
    _line(document, number, align=center)
    _line(document, f"{department}：")
    _line(document, opening, indent=True)
    _line(document, requirements, indent=True)
    _line(
        document,
        f"请于{chinese_date(deadline)}前将办理情况书面报送{office_name}。",
        indent=True,
    )
    _line(document, "")
    _line(document, office_name, align=right)
    _line(document, chinese_date(issued_on), align=right)
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()
