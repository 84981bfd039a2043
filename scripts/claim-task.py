#!/usr/bin/env python3
"""cron entry point, the same code as `agentmesh claim-task`.

    */5 * * * * /path/to/venv/bin/python /path/to/scripts/claim-task.py --config /etc/agentmesh.yaml --json
"""

import sys

from agentmesh.cli.main import main_for

if __name__ == "__main__":
    main_for("claim-task", sys.argv[1:])
