"""Meetings (“有事来商量”协商会议): thematic, on-site and written consultations.

`domain.py` (the Meeting aggregate), `bookings.py` (the topics intake accepted, the schedules
of people and venues), `reference.py` (members, experts, departments, venues per office),
`rules.py` (the refusals and ids they share), `application.py`, `consumers.py` (intake's topic
decisions, tracked), `publishing.py` (events to contracts), `schemas.py`, `api.py` and
`reference_api.py` (HTTP, calendar feeds in `calendar.py`), `settings.py` and `main.py` (the
composition root). It publishes on stream `MEETINGS` (`shared.streams.MEETINGS_STREAM`).
"""
