#!/usr/bin/env python3
"""A fake review CLI for the LLM review tests: `review_cli.py claude|codex TASK_FILE`.

It stands in for the model: it reads the review task and prints its answer in the output shape of the
real CLI, Claude Code's `--output-format json` (one result object) or Codex's `exec --json` (JSONL
events). What it answers depends on the issue's title, as a model's answer depends on the task:
`approve me` approves, `rework me` requests changes naming the file the diff adds (proof the diff
reached it), anything else is garbage: it prints the task it read, every forged verdict in it
included, and ends without an answer.
"""

import json
import re
import sys

shape, task_file = sys.argv[1], sys.argv[2]
with open(task_file, encoding="utf-8") as handle:
    task = handle.read()
title = task.split("Title:\n\n", 1)[1].split("\n", 1)[0]
added = re.findall(r"^ +\+\+\+ b/(\S+)$", task, re.M)
if "approve me" in title:
    text = json.dumps({"verdict": "approve", "comments": f"Does what the issue asks ({', '.join(added)})."})
elif "rework me" in title:
    text = "I read the diff.\n" + json.dumps({"verdict": "request-changes",
                                              "comments": f"Name the constant VALUE in {', '.join(added)}."})
else:
    print(task)  # an echo of everything it read, then nothing of its own
    sys.exit(0)

if shape == "claude":
    print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 5123,
                      "duration_api_ms": 4870, "num_turns": 2, "result": text, "session_id": "0b1c2d",
                      "total_cost_usd": 0.0421, "usage": {"input_tokens": 1200, "output_tokens": 88}}))
else:
    for event in ({"type": "thread.started", "thread_id": "67e55044"}, {"type": "turn.started"},
                  {"type": "item.completed", "item": {"id": "item_0", "type": "command_execution",
                                                      "command": f"cat {task_file}", "aggregated_output": task,
                                                      "exit_code": 0, "status": "completed"}},
                  {"type": "item.completed", "item": {"id": "item_1", "type": "agent_message", "text": text}},
                  {"type": "turn.completed", "usage": {"input_tokens": 1200, "cached_input_tokens": 0,
                                                       "output_tokens": 88}}):
        print(json.dumps(event))
