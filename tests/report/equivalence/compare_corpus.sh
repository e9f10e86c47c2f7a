#!/bin/bash
# compare two corpus output dirs after mapping both code roots to ROOT
a=$1; b=$2; bad=0
for f in $a/*; do n=$(basename $f)
  if ! cmp -s <(sed 's#/work/wt/reportfast#ROOT#g; s#/tmp/rf_base#ROOT#g' $f) <(sed 's#/work/wt/reportfast#ROOT#g; s#/tmp/rf_base#ROOT#g' $b/$n); then echo "DIFF $n"; bad=1; fi
done
echo "compared $(ls $a | wc -l) files; bad=$bad"
