"""The agent: claim-task and monitor-prs loops, executors and heartbeats."""
