"""Supervision (督办): cases, supervision letters, deadlines, verification.

Cases open from meetings' outcomes and intake's `refer` screenings (tracked consumers of the
MEETINGS and INTAKE streams); the service publishes on stream `SUPERVISION`
(`shared.streams.SUPERVISION_STREAM`). See README.md beside this file.
"""
