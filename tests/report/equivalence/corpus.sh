#!/bin/bash
# usage: corpus.sh ROOT OUTDIR  -- run ddai-report --json over inputs x option combos
ROOT=$1; OUT=$2; mkdir -p $OUT
INPUTS=(/tmp/rf/corpus/blanks.jsonl /tmp/rf/corpus/mixed.jsonl /tmp/rf/corpus/tiny.jsonl.gz /tmp/rf/corpus/events.jsonl /tmp/rf/corpus/noid.jsonl
  /tmp/rio_tiny/judge_log_0.00390625gib_1000b.jsonl $ROOT/ddai/examples/data/gspo_gemini_output.jsonl $ROOT/ddai/examples/data/gspo_phase1.json
  /work/wt/reportfast/bench_data/judge_log_0.125gib_1000b.jsonl)
OPTS=("" "--judge-high 0.7 --ndcg-high 0.3 --top 3 --deciles 4" "--fail-below 0.1 --success-from 0.9" "--strict")
i=0
for inp in "${INPUTS[@]}"; do for o in "${OPTS[@]}"; do
  i=$((i+1))
  (cd /tmp && PYTHONPATH=$ROOT python -m ddai.report.cli $inp --json --progress off $o > $OUT/$i.out 2> $OUT/$i.err; echo "rc=$?" >> $OUT/$i.err)
  sed -i "s#$ROOT#ROOT#g" $OUT/$i.out $OUT/$i.err
done; done
# multi-input
i=$((i+1)); (cd /tmp && PYTHONPATH=$ROOT python -m ddai.report.cli /tmp/rf/corpus/blanks.jsonl /tmp/rf/corpus/mixed.jsonl --json --progress off > $OUT/$i.out 2>$OUT/$i.err; echo "rc=$?" >> $OUT/$i.err)
echo done $i
