"""Operations: runs, logs, metrics, status and health (the parts an operator sees)."""
