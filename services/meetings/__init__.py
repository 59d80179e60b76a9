"""Meetings (“有事来商量”协商会议): thematic, on-site and written consultations.

Filled by its own issue, in the same shape as `services/intake/`: `domain.py` (the Meeting
aggregate), `application.py`, `api.py`, `consumers.py` (intake's accepted topics, tracked)
and `main.py` (the composition root). It publishes on stream `MEETINGS`
(`shared.messaging.MEETINGS_STREAM`).
"""
