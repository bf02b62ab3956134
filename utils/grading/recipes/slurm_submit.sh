#!/usr/bin/env bash
# Grade a folder of submissions on a Slurm cluster: a job array of N tasks (task K grades shard
# K/N), then a merge job that starts only when every task has succeeded (afterok).
#
#   usage: utils/grading/recipes/slurm_submit.sh LAB SUBMISSIONS OUT [N]
#   e.g.   utils/grading/recipes/slurm_submit.sh 01_architecture ~/hand-ins/lab1 ~/grades/lab1 20
#
# Run it on a login node, from the course repository's root, in the Python environment the
# course is installed in (the jobs inherit it). SUBMISSIONS and OUT must be on a filesystem the
# compute nodes share. Results: OUT/grades/gradebook.csv, feedback/, index.csv, summary.md;
# shard folders in OUT/shards/, logs in OUT/logs/. Set SANDBOX=none if your nodes cannot run
# bubblewrap (the grader then says NO SANDBOX; see the instructors' page).
set -euo pipefail
if [ "$#" -lt 3 ] || [ "$#" -gt 4 ]; then
    echo "usage: $0 LAB SUBMISSIONS OUT [N]" >&2
    exit 2
fi
LAB=$1
SUBMISSIONS=$(realpath "$2")
OUT=$(realpath -m "$3")
N=${4:-10}
if ! [[ $N =~ ^[1-9][0-9]*$ ]]; then
    echo "N must be a whole number >= 1, got '$N'" >&2
    exit 2
fi
SANDBOX=${SANDBOX:-bwrap}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$OUT/logs"
export LAB SUBMISSIONS OUT SANDBOX

array_job=$(sbatch --parsable --array="0-$((N - 1))" --export=ALL \
    --output="$OUT/logs/grade_%a.log" "$HERE/slurm_grade.sbatch")
array_job=${array_job%%;*}  # "jobid;cluster" on multi-cluster sites
merge_job=$(sbatch --parsable --dependency=afterok:"$array_job" --kill-on-invalid-dep=yes \
    --export=ALL --output="$OUT/logs/merge.log" "$HERE/slurm_merge.sbatch")
echo "submitted job array $array_job (shards 0..$((N - 1)) of $N) and merge job ${merge_job%%;*}"
echo "when it has finished: $OUT/grades/gradebook.csv and $OUT/grades/summary.md"
