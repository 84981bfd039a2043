"""click commands: argument parsing and output only; one module per command family."""
