#!/usr/bin/env bash
# Regenerates docs/lm/: every preset of docs/lm.md's table on web-char with offline Hessians, the
# chosen ones also with sequential calibration (JSON, one file each), and the picture
# docs/lm/perplexity.svg drawn from them by `vqlib-lm plot`; the chosen presets again tuned end to
# end (--finetune, docs/lm.md). About 90 minutes on 2 cores.
#   examples/lm/sweep.sh [path/to/vqlib-lm]    (default: build/release/examples/lm/vqlib-lm)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
lm="${1:-build/release/examples/lm/vqlib-lm}"
out=docs/lm
mkdir -p "$out"
offline=gptq-w2g128-act,gptq-w2g128-act-had,gptq-w2g64-act-had,gptq-w3g128-act,gptq-w3g128-act-had
offline+=,gptq-w4g128,gptq-w4g128-act-had
offline+=,gptvq-2d-2.125-ref,gptvq-2d-2.125-best,gptvq-2d-2.125-best-had,gptvq-2d-2.125-best-had-invu
offline+=,gptvq-4d-2.125-ref,gptvq-4d-2.125-best-had,gptvq-2d-2.25-best-had,gptvq-2d-3.125-ref
offline+=,gptvq-2d-3.125-best-had,gptvq-2d-4.125-best-had
offline+=,vptq-v4k256,vptq-v4k256-had,vptq-v4k256-res16-had,vptq-v2k64-had,vptq-v2k256-had
offline+=,pvq-2.25-paper,pvq-2.25-best,pvq-d64-2.094-best,pvq-3.125-best,pvq-3.25-best,pvq-4.125-best
offline+=,gptvq-2d-2.125-best-act,gptvq-2d-2.125-best-act-had,gptvq-2d-2.125-best-had-act-invu
offline+=,gptvq-2d-2.125-best-scaled,gptvq-2d-2.125-best-scaled-had,gptvq-2d-2.125-best-scaled-act
offline+=,gptvq-2d-2.125-best-scaled-act-had,gptvq-4d-2.125-best-act-had,gptvq-2d-2.25-best-scaled-act-had
offline+=,gptvq-2d-3.125-best-act-had,gptvq-2d-3.125-best-scaled-act-had
offline+=,gptvq-1d-2.125-best-had,gptvq-1d-2.125-best-svd,gptvq-1d-2.125-best-svd-had
offline+=,gptvq-1d-3.125-best-had,gptvq-1d-3.125-best-svd-had
offline+=,pvq-graded-a-2.094-best,pvq-graded-b-2.094-best,pvq-graded-c-2.094-best
offline+=,pvq-graded-d-2.094-best,pvq-graded-e-2.094-best,pvq-graded-f-2.094-best
offline+=,pvq-graded-3.094-best,gptq-graded-w2334g128-act-had
sequential=gptq-w2g128-act-had,gptq-w3g128-act-had,gptq-w4g128-act-had,gptvq-2d-2.125-best-had
sequential+=,gptvq-4d-2.125-best-had,gptvq-2d-3.125-best-had,vptq-v4k256-had,vptq-v2k64-had
sequential+=,pvq-d64-2.094-best,pvq-3.125-best
sequential+=,gptvq-4d-2.125-best-act-had,gptvq-2d-2.125-best-had-act-invu,gptvq-2d-2.25-best-scaled-act-had
sequential+=,pvq-graded-a-2.094-best,pvq-graded-3.094-best,gptq-graded-w2334g128-act-had
"$lm" sweep --quiet --calibration offline --methods "$offline" --json "$out/offline.json"
"$lm" sweep --quiet --calibration sequential --methods "$sequential" --json "$out/sequential.json"
tuned=pvq-graded-a-2.094-best,gptvq-2d-2.125-best-had-act-invu,gptq-w2g128-act-had,gptvq-4d-2.125-best-act-had
tuned+=,vptq-v4k256-had,gptq-graded-w2334g128-act-had,pvq-graded-3.094-best,gptvq-2d-3.125-best-had,vptq-v2k64-had
tuned+=,gptvq-2d-2.25-best-scaled-act-had,gptq-w2g64-act-had,pvq-2.25-best
"$lm" sweep --quiet --calibration offline --methods "$tuned" --finetune 4 --json "$out/tuned.json"
"$lm" plot --json "$out/offline.json,$out/sequential.json,$out/tuned.json" --svg "$out/perplexity.svg"
