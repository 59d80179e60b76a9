"""Tools around the services (工具): the `shangliang` command and the one-machine launcher."""
