"""Notifications (通知): deadlines, letters and invitations to departments and offices."""
