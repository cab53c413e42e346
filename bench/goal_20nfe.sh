#!/usr/bin/env bash
# The goal "at 20 network evaluations, within 10% of 1000-step ancestral" (FID-domain), measured at a sample
# count that can settle it: every sampler on the same seeds (sample i of each run comes from the same noise), the
# seeds pooled, paired differences to the reference with bootstrap intervals (bench/fid_compare.py).
#
#   bash bench/goal_20nfe.sh CKPT [OUT]              # env: N (samples per seed, 1024), SEEDS ("0 1 2"),
#                                                    #      ONLY (run names, default all), PYTHON (python),
#                                                    #      EXTRA (overrides for every evaluate)
# Writes OUT/NAME/sSEED/ (one evaluate run per sampler and seed; a re-run keeps the finished ones), OUT/NAME/summary.md
# (the sampler's multirun) and OUT/compare.md (the paired comparison, also printed).
#
# Why the sample count matters: the paired difference's 5-95% interval is about +-0.45 FID-domain at 1024 samples
# per sampler and +-0.22 at 3072 (BENCHMARKS.md, "The 20-NFE goal"), while 10% of the reference is ~0.06 (~0.045 of its
# FID_inf): an interval inside the 10% needs 40k-80k samples of each sampler, 24-48 h of 1000-step sampling on the
# 2-core CPU (36 min per 1024 samples) and minutes on a GPU. On a lent GPU (device tool): copy the checkpoint into an
# ignored folder of the repo, carry it, and run e.g.
#   PYTHON=python3 PYTHONPATH=src N=10000 SEEDS="0 1 2 3" bash bench/goal_20nfe.sh .device/last.ckpt $OUT/goal
# (the GPU image lacks hydra-core, omegaconf and antlr4-python3-runtime: carry their wheels, device README).
set -euo pipefail
CKPT=${1:?usage: bash bench/goal_20nfe.sh CKPT [OUT]}
OUT=${2:-outputs/goal_20nfe}
N=${N:-1024}
SEEDS=${SEEDS:-0 1 2}
PYTHON=${PYTHON:-python}
EXTRA=${EXTRA:-}
[ -f "$CKPT" ] || { echo "error: checkpoint $CKPT not found; allowed: a .ckpt written by src/train.py" >&2; exit 2; }

# name | overrides (the reference first: fid_compare measures the others against it)
RUNS=(
  "ddpm1000|sampler=ddpm sampler.steps=null"
  "dpmpp_3m_sde_esm|sampler=dpmpp_3m_sde sampler.steps=20 sampler.eta_sigma_min=0.135"
  "dpmpp_3m_sde|sampler=dpmpp_3m_sde sampler.steps=20"
  "dpmpp_2m_sde_pc|sampler=dpmpp_2m_sde_pc sampler.steps=20"
  "dpmpp_2m_sde|sampler=dpmpp_2m_sde sampler.steps=20"
  "dpmpp_2m|sampler=dpmpp_2m sampler.steps=20"
)
mkdir -p "$OUT"
pooled=()
for run in "${RUNS[@]}"; do
  name=${run%%|*}; overrides=${run#*|}; parts=(); todo=()
  [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || continue
  for s in $SEEDS; do
    dir=$OUT/$name/s$s
    if [ -f "$dir/fid_features.pt" ]; then  # finished runs are kept: the script can be re-run after a stop
      grep -q "\"num_samples\": $N," "$dir/metrics.json" || {
        echo "error: $dir holds a run of another sample count than N=$N; allowed: its own N, or another OUT" >&2
        exit 2; }
    else
      todo+=("$s")
    fi
    parts+=("$dir")
  done
  if [ ${#todo[@]} -gt 0 ]; then
    # every seed still to run in one process (a Hydra multirun): imports and checkpoint loaded once per sampler;
    # OUT/NAME/ also gets the sweep's summary.md
    # shellcheck disable=SC2086
    $PYTHON src/evaluate.py -m ckpt="$CKPT" $overrides 'metrics=[fid]' num_samples="$N" \
      seed="$(IFS=,; echo "${todo[*]}")" hydra.sweep.dir="$OUT/$name" 'hydra.sweep.subdir=s${seed}' $EXTRA
  fi
  pooled+=("$(IFS=+; echo "${parts[*]}")")
done
$PYTHON bench/fid_compare.py "${pooled[@]}" --resamples 200 --out "$OUT/compare.md"
cat "$OUT/compare.md"
