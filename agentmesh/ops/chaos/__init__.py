"""`agentmesh chaos`: a mesh of real agent processes under a seeded nemesis, judged from the remote.

- `schedule`: the nemesis's plan and the executors' delays, pure functions of the seed and the options;
- `gitdaemon`, `agents`: the processes the harness starts, signals and restarts (git daemon, cron-style
  agents, daemons);
- `nemesis`: applies the plan to them, and heals;
- `remote`, `invariants`: read the bare repository with git plumbing and judge it; `leftovers`: locks
  and processes left on this host;
- `harness`: set up, run, quiesce, stop, check; `executor`: the demo executor behind a delay.

docs/chaos.md says what each fault does and what each invariant means.
"""
