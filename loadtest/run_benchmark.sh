#!/usr/bin/env bash
# The recd load benchmark of issue 7, in one command:
#
#   loadtest/run_benchmark.sh            full run (about 35 minutes, 10 of them the soak)
#   loadtest/run_benchmark.sh --quick    small catalogue, short steps, 30 s soak (about 6 minutes)
#   loadtest/run_benchmark.sh --no-soak  everything but the soak
#
# It builds recd and recload (Release), then for a 100k-item catalogue:
#   1. starts recd on a fresh data dir (durable writes, --scorer=int8: the exact scan's answers
#      through the int8 screen, pure_svd rank 64, one scan thread per request), loads 100k users /
#      100k items / ~3M interactions and trains;
#   2. pins recd to the server CPU(s) and recload to the client CPU(s) (taskset);
#   3. Recommend at 1,000/s (target: p99 <= 1 ms);
#   4. the mix (recommend 70, batch 5, similar 15, log 10) at a fixed rate, and the health check
#      at the same rate (the gRPC floor);
#   5. step searches (p99 <= 5 ms): Recommend, then the mix;
#   6. the soak: the mix at 80 % of its highest rate for 10 minutes, server RSS sampled from /proc,
#      after a warm-up that brings recd's bounded history cache to its steady state;
#   7. Recommend at 1,000/s again with recd restarted on every CPU and 2 scan threads, and with
#      recd restarted on its CPU with --scorer=exact (the float32 scan: same answers);
# then on a second server with 10k items: Recommend's highest rate against the health-check
# floor, and LogInteractions, closed loop, batches of 1 and 100 (acknowledged interactions per
# second). It ends with the table of issue-7 targets, met or missed.
#
# Environment:
#   RECD_LOAD_BUILD_DIR     build folder (default <repo>/build-load)
#   RECD_BENCH_SERVER_CPUS  CPUs of recd while measuring (default 0)
#   RECD_BENCH_CLIENT_CPUS  CPUs of recload (default 1)
#   RECD_BENCH_OUT          result folder (default <build>/loadbench-<date>)
#   RECD_BENCH_MIX_RATE     rate of the fixed-rate mix run (default 500/s)
#   RECD_BENCH_SCORER       recd's --scorer for every run but the float32 comparison (default int8)
#   RECD_BENCH_SOAK         soak duration (default 10m; 30s with --quick)
#   RECD_BENCH_NICE         nice level of recd and recload (default 0). On a shared machine, e.g.
#                           -10 (root only) keeps other jobs on the same CPUs from inflating the
#                           figures. With autogrouping (kernel.sched_autogroup_enabled=1) the
#                           level is also set on this session's autogroup, and restored at exit,
#                           since the scheduler shares CPU between sessions before processes.
#                           The table reports the level used.
#   RECD_BENCH_RT           if set (e.g. 10, root only), recd (once loaded) and recload run
#                           SCHED_FIFO at this priority: on a machine busy with other work the
#                           scheduler then runs them as soon as they are runnable, as on a
#                           dedicated machine. The kernel still keeps 5 % of each CPU for other
#                           tasks (sched_rt_runtime_us), which shows as ~50 ms stalls only when
#                           a step saturates a CPU, i.e. in steps that fail anyway; recload
#                           then tops out near 95 % of its CPU, which can cap the health-check
#                           floor (the table says when). RocksDB's flush and compaction threads
#                           keep the normal policy (FIFO does not time-slice).
# Needs: taskset (util-linux), jq. Run it on a quiet machine: the table reports the load average.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
bench_init run_benchmark.sh
mix_rate="${RECD_BENCH_MIX_RATE:-500}"
quick=0
soak=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-soak) soak=0 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "run_benchmark.sh: unknown argument '$arg' (--quick, --no-soak)" >&2; exit 2 ;;
  esac
done

if [[ $quick == 1 ]]; then
  users=20000; items=20000; interactions=400000
  small_users=10000; small_items=10000; small_interactions=200000
  run_time=10s; warmup=3s; step_time=4s; step_warmup=1s; log_time=8s
  soak_time="${RECD_BENCH_SOAK:-30s}"
else
  users=100000; items=100000; interactions=3000000
  small_users=10000; small_items=10000; small_interactions=300000
  run_time=30s; warmup=5s; step_time=15s; step_warmup=2s; log_time=20s
  soak_time="${RECD_BENCH_SOAK:-10m}"
fi

out="${RECD_BENCH_OUT:-$build/loadbench-$(date +%Y%m%d-%H%M%S)}"
bench_setup
bench_banner

# ---- 100k x 64 -------------------------------------------------------------------------------
start_server big
common=(--users="$users" --items="$items")
populate "${common[@]}" --interactions="$interactions" --out="$out/big-populate"
pin_server

echo; echo "== Recommend at 1,000/s (open loop)"
recload run "${common[@]}" --mix=recommend --rate=1000 --warmup="$warmup" --duration="$run_time" \
  --label="recommend 1000/s" --out="$out/recommend-1000"

echo; echo "== the mix at $mix_rate/s, then the health check at the same rate"
mix="recommend:70,batch:5,similar:15,log:10"
recload run "${common[@]}" --mix="$mix" --rate="$mix_rate" --warmup="$warmup" --duration="$run_time" \
  --baseline --label="mix $mix_rate/s" --out="$out/mix"

echo; echo "== step search: Recommend, p99 <= 5 ms"
recload step "${common[@]}" --mix=recommend --p99_target=5ms --step_start=250 --step_factor=1.4 \
  --step_warmup="$step_warmup" --step_duration="$step_time" --out="$out/step-recommend"

echo; echo "== step search: the mix, p99 of Recommend <= 5 ms"
recload step "${common[@]}" --mix="$mix" --step_method=recommend --p99_target=5ms --step_start=250 \
  --step_factor=1.4 --step_warmup="$step_warmup" --step_duration="$step_time" --out="$out/step-mix"

# The soak follows the mix's search directly, on the same server state. (The LogInteractions
# throughput runs write millions of interactions; they run last, on the second server.)
if [[ $soak == 1 ]]; then
  mix_highest="$(jq -r '.highest_rate_held' "$out/step-mix.json")"
  soak_rate="$(jq -rn --argjson h "$mix_highest" '($h * 0.8 * 10 | floor) / 10')"
  soak_note="80 % of $mix_highest/s"
  if [[ "$soak_rate" == "0" ]]; then
    # No step held the p99 target: still soak for memory growth and errors, at the lowest
    # rate the search tried (its starting rate), and say so in the table.
    soak_rate="$(jq -r '[.step_runs[0].steps[].rate] | min // 250' "$out/step-mix.json")"
    soak_note="no step held; the search's lowest rate"
  fi
  # Steady state first: recd keeps the newest history of every user it served in memory (a
  # bounded cache), so a soak that starts with a cold cache measures it filling up, not a leak.
  # Recommend for uniformly drawn users, three calls per user (about 95 % of them asked).
  echo; echo "== cache warm-up before the soak: $((3 * users)) Recommend calls over uniformly drawn users"
  recload run "${common[@]}" --mix=recommend --user_zipf=0 --mode=closed --concurrency=16 --warmup=0s \
    --duration=10m --max_requests="$((3 * users))" --label="cache warm-up" --out="$out/soak-warmup"
  echo; echo "== soak: the mix at $soak_rate/s ($soak_note) for $soak_time"
  recload run "${common[@]}" --mix="$mix" --rate="$soak_rate" --warmup=30s --duration="$soak_time" \
    --label="soak $soak_rate/s" --out="$out/soak"
fi

# The same 1,000/s with recd on every CPU and each scan split over 2 threads (recload shares
# its CPU): does the 1 ms target need one core or two?
stop_server keep
echo; echo "== Recommend at 1,000/s, recd restarted on all CPUs with 2 scan threads (recload shares CPU $client_cpus)"
start_server big-2cpu 2
saved_cpus="$server_cpus"; server_cpus="0-$(( $(nproc) - 1 ))"; pin_server; server_cpus="$saved_cpus"
recload run "${common[@]}" --mix=recommend --rate=1000 --warmup="$warmup" --duration="$run_time" \
  --label="recommend 1000/s 2cpu" --out="$out/recommend-1000-2cpu"
stop_server keep

# The same 1,000/s on one CPU with the float32 scan, which the int8 screen's answers equal.
echo; echo "== Recommend at 1,000/s, recd restarted with --scorer=exact (the float32 scan)"
start_server big-float 1 --scorer=exact
pin_server
recload run "${common[@]}" --mix=recommend --rate=1000 --warmup="$warmup" --duration="$run_time" \
  --label="recommend 1000/s float32 scan" --out="$out/recommend-1000-float"
recload step "${common[@]}" --mix=recommend --p99_target=5ms --step_start=250 --step_factor=1.4 \
  --step_warmup="$step_warmup" --step_duration="$step_time" --out="$out/step-recommend-float"
stop_server

# ---- 10k items: Recommend against the health floor ------------------------------------------
start_server small
small=(--users="$small_users" --items="$small_items")
populate "${small[@]}" --interactions="$small_interactions" --out="$out/small-populate"
pin_server
echo; echo "== step search on $small_items items: Recommend, p99 <= 5 ms"
recload step "${small[@]}" --mix=recommend --p99_target=5ms --step_start=1000 --step_factor=1.4 \
  --step_warmup="$step_warmup" --step_duration="$step_time" --out="$out/step-small"
echo; echo "== step search on the same server: the health check (the gRPC floor), p99 <= 5 ms"
recload step "${small[@]}" --mix=health --p99_target=5ms --step_start=2000 --step_factor=1.4 \
  --step_warmup="$step_warmup" --step_duration="$step_time" --out="$out/step-small-health"

for batch in 1 100; do
  echo; echo "== LogInteractions, batch $batch, closed loop, 64 in flight (durable writes)"
  recload run "${small[@]}" --mix=log --log_batch="$batch" --mode=closed --concurrency=64 \
    --warmup=2s --duration="$log_time" --deadline=10s --label="log batch $batch" --out="$out/log-$batch"
done
stop_server
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the table -------------------------------------------------------------------------------
r1="$out/recommend-1000.json"
rec_highest="$(jq -r '.highest_rate_held' "$out/step-recommend.json")"
mix_highest="$(jq -r '.highest_rate_held' "$out/step-mix.json")"
small_rec="$(jq -r '.highest_rate_held' "$out/step-small.json")"
small_health="$(jq -r '.highest_rate_held' "$out/step-small-health.json")"
small_ratio="$(jq -rn --argjson r "$small_rec" --argjson h "$small_health" 'if $h > 0 then $r / $h else 0 end')"
# Who limited the floor: CPU of recd and recload at the highest health-check step that held.
floor_cpu="$(jq -r '[.step_runs[0].steps[] | select(.held)] | if length == 0 then "no step held" else (max_by(.rate) | "\(.rate | floor)/s, recd \(.phase.server_cpu_cores * 100 | floor) % and recload \(.phase.client_cpu_cores * 100 | floor) % of a CPU") end' "$out/step-small-health.json")"
log1="$(jq -r '.phases[0].methods.log.units_per_s' "$out/log-1.json")"
log100="$(jq -r '.phases[0].methods.log.units_per_s' "$out/log-100.json")"
log1_p99="$(jq -r '.phases[0].methods.log.latency_ms.p99' "$out/log-1.json")"
log100_p99="$(jq -r '.phases[0].methods.log.latency_ms.p99' "$out/log-100.json")"

echo
echo "================================ recd load benchmark (issue 7) ================================"
echo "catalogue ${users} users x ${items} items, pure_svd rank 64, --scorer=$scorer ($(jq -r '.server.scorer_isa' "$r1")), k=10, durable writes"
echo "core split: recd on CPU(s) $server_cpus, recload on CPU(s) $client_cpus (taskset), $sched_desc; load average at start $load_start, at end $load_end"
printf '%-66s %-44s %s\n' "target" "measured" "verdict"
# rec_1000_row LABEL FILE: the 1 ms target's row for a Recommend-at-1,000/s result file.
rec_1000_row() {
  local p99 ach err
  p99="$(jq -r '.phases[0].methods.recommend.latency_ms.p99' "$2")"
  ach="$(jq -r '.phases[0].achieved_rate' "$2")"
  err="$(jq -r '.phases[0].errors' "$2")"
  printf '%-66s %-44s %s\n' "$1" "$(printf 'p99 %.3f ms, %.0f/s achieved, %s errors' "$p99" "$ach" "$err")" \
    "$(verdict "$(jq -rn --argjson p "$p99" --argjson e "$err" --argjson a "$ach" '$p <= 1 and $e == 0 and $a >= 950')")"
}
health_p99="$(jq -r '[.phases[] | .methods.health.latency_ms.p99 // empty][0] // 0' "$out/mix.json")"
printf '%-66s %-44s %s\n' "(the gRPC floor: health check p99 at $mix_rate/s, same server and run)" \
  "$(printf 'p99 %.3f ms' "$health_p99")" "reported"
rec_1000_row "Recommend p99 <= 1 ms at 1,000/s ($items items x 64)" "$r1"
rec_1000_row "  same, recd on CPUs 0-$(( $(nproc) - 1 )) with 2 scan threads (recload shares a CPU)" "$out/recommend-1000-2cpu.json"
rec_1000_row "  same, recd on CPU(s) $server_cpus with --scorer=exact (float32 scan, same answers)" "$out/recommend-1000-float.json"
printf '%-66s %-44s %s\n' "Recommend highest rate, p99 <= 5 ms ($items items x 64)" "$(printf '%.0f/s' "$rec_highest")" "reported"
printf '%-66s %-44s %s\n' "  same with --scorer=exact (float32 scan)" "$(printf '%.0f/s' "$(jq -r '.highest_rate_held' "$out/step-recommend-float.json")")" "reported"
printf '%-66s %-44s %s\n' "Mix highest rate, p99(Recommend) <= 5 ms ($items x 64)" "$(printf '%.0f/s' "$mix_highest")" "reported"
printf '%-66s %-44s %s\n' "$small_items items: Recommend highest rate >= 50 % of health" \
  "$(printf '%.0f/s vs %.0f/s = %.1f %%' "$small_rec" "$small_health" "$(jq -rn --argjson r "$small_ratio" '$r * 100')")" \
  "$(verdict "$(jq -rn --argjson r "$small_ratio" '$r >= 0.5')")"
printf '%-66s %-44s %s\n' "LogInteractions acknowledged/s, batch 1 (durable)" "$(printf '%.0f/s (p99 %.2f ms)' "$log1" "$log1_p99")" "reported"
printf '%-66s %-44s %s\n' "LogInteractions acknowledged/s, batch 100 (durable)" "$(printf '%.0f/s (p99 %.2f ms)' "$log100" "$log100_p99")" "reported"
if [[ $soak == 1 && -f "$out/soak.json" ]]; then
  growth="$(jq -r '.phases[0].server_rss_growth' "$out/soak.json")"
  soak_errors="$(jq -r '.phases[0].errors' "$out/soak.json")"
  soak_rate="$(jq -r '.phases[0].target_rate' "$out/soak.json")"
  soak_ach="$(jq -r '.phases[0].achieved_rate' "$out/soak.json")"
  rss0="$(jq -r '.phases[0].server_rss_start_bytes / 1048576' "$out/soak.json")"
  rss1="$(jq -r '.phases[0].server_rss_end_bytes / 1048576' "$out/soak.json")"
  printf '%-66s %-44s %s\n' "Soak $soak_time at 80 % of the mix's highest rate ($soak_note): RSS < +5 %, 0 errors" \
    "$(printf '%.0f/s: RSS %.0f->%.0f MiB (%+.2f %%), %s errors' "$soak_ach" "$rss0" "$rss1" "$(jq -rn --argjson g "$growth" '$g * 100')" "$soak_errors")" \
    "$(verdict "$(jq -rn --argjson g "$growth" --argjson e "$soak_errors" '$g < 0.05 and $e == 0')")"
fi
echo "(health-check floor at its highest step: $floor_cpu; when recload is near 100 % the floor is"
echo " the client's limit, so the true floor is higher and the ratio above is an upper bound)"
if [[ $quick == 1 ]]; then echo "(--quick: smaller catalogue and shorter runs; the targets are defined on the full run)"; fi
if machine_busy "${load_end%% *}"; then
  echo "(the machine was busy: load average $load_end at the end; repeat on a quiet machine before trusting the figures)"
fi
echo "JSON and SVG charts: $out"
