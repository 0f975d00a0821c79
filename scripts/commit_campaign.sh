#!/usr/bin/env bash
# Commit the campaign folders' newest run states, once, near the end of a session (the rule in
# campaign/README.md: one state commit per push of work, not every half hour: superseded states
# stay in every clone's history). Stop the runs right after a save first, then:
#     scripts/commit_campaign.sh
# Only campaign/ is committed (`git commit -- campaign`: other staged work is left alone); the
# message lists each campaign's step, and the size check runs on the new commit.
set -eu
cd "$(dirname "$0")/.."
summary=$(python3 - <<'PY'
import json, pathlib
parts = []
for folder in sorted(pathlib.Path("campaign").glob("*/state/manifest.json")):
    step = json.loads(folder.read_text()).get("train_state", {}).get("step")
    parts.append(f"{folder.parent.parent.name} step {step}")
print("; ".join(parts))
PY
)
git add campaign
if git diff --cached --quiet -- campaign; then
  echo "campaign/: nothing new to commit"
  exit 0
fi
git commit -q -m "campaign: ${summary}" -- campaign
git log --oneline -1
python3 scripts/check_commit_sizes.py
