"""Intake (问题收集): outreach activities and the issues residents raise."""
