"""The 2020 demo (演示): the pilot's scenario generated from the data in `demo/data/`, loaded
through the services' public HTTP APIs, and its figures set beside the report's."""
