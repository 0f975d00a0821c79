#!/usr/bin/env bash
# Commit the campaign folder's newest run states every INTERVAL seconds (default 1800) while
# campaigns train in the background, so that a session ending without warning loses little:
#     nohup scripts/commit_campaign.sh 1800 > /tmp/commit_campaign.log 2>&1 &
# Only campaign/ is committed (`git commit -- campaign`: other staged work is left alone).
set -u
cd "$(dirname "$0")/.."
interval="${1:-1800}"
while true; do
  sleep "$interval"
  summary=$(python3 - <<'PY'
import json, pathlib
parts = []
for folder in sorted(pathlib.Path("campaign").glob("*/state/manifest.json")):
    step = json.loads(folder.read_text()).get("train_state", {}).get("step")
    parts.append(f"{folder.parent.parent.name} step {step}")
print("; ".join(parts))
PY
)
  for attempt in 1 2 3 4 5; do
    git add campaign && git commit -q -m "campaign: ${summary}" -- campaign && break
    git diff --cached --quiet -- campaign && break  # nothing new to commit
    sleep 10  # another git command held the index lock
  done
  echo "$(date -u +%FT%TZ) ${summary}"
done
