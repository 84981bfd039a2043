"""The pure core: decisions over data. No I/O; the current time is an argument.

tests/unit/test_core_purity.py fails if anything here imports a module that
does I/O (subprocess, socket, requests, os, pathlib, time, ...).
"""
