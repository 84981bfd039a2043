"""Operations: host locks, logs, status and health (the parts an operator sees)."""
