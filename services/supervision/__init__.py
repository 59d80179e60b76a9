"""Supervision (督办): cases, supervision letters, deadlines, verification.

Filled by its own issue, in the same shape as `services/intake/`: `domain.py` (the
SupervisionCase aggregate), `application.py`, `api.py`, `consumers.py` (meeting outcomes and
`refer` screenings, tracked) and `main.py`. It publishes on stream `SUPERVISION`
(`shared.messaging.SUPERVISION_STREAM`).
"""
