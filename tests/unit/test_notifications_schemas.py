"""The directory's request bodies refuse what every service's bodies refuse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.notifications.schemas import RecipientBody, check_key


@pytest.mark.parametrize(
    "body",
    [{"name": "住建局\x00"}, {"name": "\u202e局建住"}, {"name": "住建局", "users": ["u\udc80"]}],
)
def test_a_directory_entry_with_a_control_or_format_character_is_refused(body: dict) -> None:
    with pytest.raises(ValidationError, match="U\\+"):
        RecipientBody.model_validate(body)


def test_a_key_with_a_control_character_is_refused() -> None:
    with pytest.raises(ValueError, match="U\\+0000"):
        check_key("person:zhang\x00san")
