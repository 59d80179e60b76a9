"""The project's common package: event contracts, NATS plumbing, settings, auth."""
