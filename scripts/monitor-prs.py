#!/usr/bin/env python3
"""cron entry point, the same code as `agentmesh monitor-prs`.

    */10 * * * * /path/to/venv/bin/python /path/to/scripts/monitor-prs.py --config /etc/agentmesh.yaml --json
"""

import sys

from agentmesh.cli.main import main_for

if __name__ == "__main__":
    main_for("monitor-prs", sys.argv[1:])
