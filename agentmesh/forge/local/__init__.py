"""The git-native forge: issues, PRs, reviews and statuses stored in the remote itself.

Storage (docs/local-forge.md has the full format):
- `refs/agentmesh/items/<n>`: one ref per issue or PR (one number sequence).
  It points at a commit whose tree is `meta.json`, `comments/<id>.json` and
  `reviews/<id>.json`; each change is a new commit whose parent is the
  previous state, so the ref's history is the item's history.
- `refs/agentmesh/labels`: the label registry (`labels.json`).
- `refs/agentmesh/statuses/<sha>`: commit statuses of one sha (`statuses.json`).
- `refs/agentmesh/roster`: optional permissions (`roster.json`).

Modules, bottom up: `schema` (the stored format and its checks), `store` (reads
and CAS writes of those refs), `api` (`LocalForge`, the forge interface) and
`bootstrap` (a new remote: `agentmesh forge init`).
"""

from agentmesh.forge.local.api import LocalForge
from agentmesh.forge.local.bootstrap import DEFAULT_LABELS, init_repository, starter_files
from agentmesh.forge.local.schema import CorruptItem, InvalidName, check_branch_name

__all__ = ["DEFAULT_LABELS", "CorruptItem", "InvalidName", "LocalForge", "check_branch_name", "init_repository",
           "starter_files"]
