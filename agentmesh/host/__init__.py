"""Host-local state: the host config, the state directory, host locks and atomic files."""
