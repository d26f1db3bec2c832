# Shell functions shared by the one-command benchmarks (run_benchmark.sh, issue 7;
# run_continuous_benchmark.sh, issue 5). Sourced, not run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
#   bench_init <script name>      settings from the environment (below)
#   ... parse the script's own arguments, choose $out ...
#   bench_setup                   tool checks, result folder, build, traps, autogroup nice level
#   bench_banner                  machine, core split, load average (busy-machine warning)
#   start_server NAME [SCAN_THREADS [RECD FLAGS...]]   recd on a fresh (or kept) data dir
#   populate ARGS...              recload populate on every CPU, before pinning
#   pin_server                    recd onto $server_cpus (and SCHED_FIFO with RECD_BENCH_RT)
#   recload ARGS...               recload on $client_cpus against the running recd
#   stop_server [keep]
#
# Environment (read by bench_init):
#   RECD_LOAD_BUILD_DIR     build folder (default <repo>/build-load)
#   RECD_BENCH_SERVER_CPUS  CPUs of recd while measuring (default 0)
#   RECD_BENCH_CLIENT_CPUS  CPUs of recload (default 1)
#   RECD_BENCH_NICE         nice level of recd and recload (default 0; also set on the session's
#                           autogroup and restored at exit)
#   RECD_BENCH_RT           SCHED_FIFO priority of recd (once loaded) and recload (default off)
#   RECD_BENCH_SCORER       recd's --scorer (default int8: the int8 screen with the exact scan's
#                           answers; exact: the float32 scan)
# See run_benchmark.sh's header for what the nice and RT settings do on a shared machine.

# bench_init NAME: reads the environment; sets root, build, server_cpus, client_cpus,
# nice_level, rt_prio, scorer, sched_desc, recd_bin, recload_bin.
bench_init() {
  bench_name="$1"
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  build="${RECD_LOAD_BUILD_DIR:-$root/build-load}"
  server_cpus="${RECD_BENCH_SERVER_CPUS:-0}"
  client_cpus="${RECD_BENCH_CLIENT_CPUS:-1}"
  nice_level="${RECD_BENCH_NICE:-0}"
  rt_prio="${RECD_BENCH_RT:-0}"
  scorer="${RECD_BENCH_SCORER:-int8}"
  sched_desc="nice $nice_level"
  if [[ "$rt_prio" != 0 ]]; then sched_desc="SCHED_FIFO $rt_prio"; fi
  recd_bin="$build/server/recd"
  recload_bin="$build/loadtest/recload"
  server_pid=""
  data_dir=""
  port=""
  autogroup_before=""
}

# bench_setup: checks the tools, creates $out, builds recd and recload (Release), installs the exit trap (stops
# recd, removes its data dir, restores the autogroup nice level) and applies RECD_BENCH_NICE to
# this session's autogroup.
bench_setup() {
  for tool in taskset chrt jq; do
    command -v "$tool" >/dev/null || { echo "$bench_name: needs $tool (apt-get install util-linux jq)" >&2; exit 2; }
  done
  mkdir -p "$out"
  echo "== building recd and recload in $build (Release)"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target recd recload >/dev/null
  trap 'stop_server; restore_autogroup' EXIT
  trap 'exit 130' INT TERM
  if [[ "$nice_level" != 0 && -w /proc/self/autogroup ]]; then
    autogroup_before="$(awk '{print $3}' /proc/self/autogroup)"
    echo "$nice_level" >/proc/self/autogroup 2>/dev/null || { autogroup_before=""; echo "(cannot set the autogroup nice level)"; }
  fi
}

restore_autogroup() {
  if [[ -n "$autogroup_before" ]]; then echo "$autogroup_before" >/proc/self/autogroup 2>/dev/null || true; fi
}

# stop_server [keep]: SIGTERM (SIGKILL after 30 s); removes the data dir unless "keep".
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
  if [[ "${1:-}" == keep ]]; then return; fi
  if [[ -n "$data_dir" && -d "$data_dir" ]]; then rm -rf "$data_dir"; fi
  data_dir=""
}

# start_server NAME [SCAN_THREADS [RECD FLAGS...]]: recd on all CPUs (training uses both), with
# durable writes, --scorer=$scorer and pure_svd at rank 64; port in $port. On a fresh data dir,
# or on the kept one after `stop_server keep` (a restart). Extra flags go last (they win).
start_server() {
  local name="$1" scan_threads="${2:-1}"
  shift $(( $# < 2 ? $# : 2 ))
  if [[ -z "$data_dir" ]]; then data_dir="$(mktemp -d "$build/loadbench-data.XXXXXX")"; fi
  rm -f "$out/$name.port"
  nice -n "$nice_level" "$recd_bin" --data_dir="$data_dir" --listen=127.0.0.1:0 --port_file="$out/$name.port" \
    --models=popularity,pure_svd --model_params=pure_svd.rank=64 --scorer_threads="$scan_threads" \
    --scorer="$scorer" --sync_writes=true --metrics_listen=127.0.0.1:0 --log_level=warning "$@" >"$out/$name.server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    [[ -s "$out/$name.port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "recd exited; log:"; tail -20 "$out/$name.server.log"; exit 1; }
    sleep 0.1
  done
  [[ -s "$out/$name.port" ]] || { echo "recd did not report a port within 60 s" >&2; exit 1; }
  port="$(head -n1 "$out/$name.port")"  # line 1: the gRPC port (line 2: the metrics port)
  echo "== recd ($name) pid $server_pid on 127.0.0.1:$port, data $data_dir ($(df -T "$data_dir" | awk 'NR==2 {print $2}'))"
}

# pin_server: every thread of recd onto the server CPUs (new threads inherit the mask).
pin_server() {
  taskset -a -p -c "$server_cpus" "$server_pid" >/dev/null
  if [[ "$rt_prio" != 0 ]]; then
    # Every thread but RocksDB's flush and compaction threads: at the same SCHED_FIFO priority
    # a compaction would hold the CPU until it blocks (FIFO does not time-slice), stalling
    # requests for tens of milliseconds; at normal priority it runs when requests leave room.
    # Threads started later inherit the policy of the thread that starts them. recd's background
    # threads keep the normal policy too: the trainer (niced +10), whose retrains would hold the
    # CPU for seconds under SCHED_FIFO, and the once-a-second upkeep (cold-item ranking), which
    # would delay requests by its whole run.
    for task in /proc/"$server_pid"/task/*; do
      case "$(cat "$task/comm" 2>/dev/null)" in rocksdb:* | recd-trainer | recd-maintain) continue ;; esac
      local nice_now
      nice_now="$(sed 's/.*) //' "$task/stat" 2>/dev/null | cut -d' ' -f17)"
      if [[ -n "$nice_now" && "$nice_now" -gt "$nice_level" ]]; then continue; fi
      chrt -f -p "$rt_prio" "${task##*/}" >/dev/null 2>&1 || true
    done
  fi
}

# populate ARGS...: recload populate on every CPU (recd is not pinned yet).
populate() {
  taskset -c 0-"$(( $(nproc) - 1 ))" "$recload_bin" populate --target="127.0.0.1:$port" "$@"
}

recload() {
  local sched=(nice -n "$nice_level")
  if [[ "$rt_prio" != 0 ]]; then sched=(chrt -f "$rt_prio"); fi
  "${sched[@]}" taskset -c "$client_cpus" "$recload_bin" --target="127.0.0.1:$port" --server_pid="$server_pid" "$@"
}

# machine_busy LOAD: true when the 1-minute load average LOAD exceeds half the CPUs.
machine_busy() {
  awk -v l="$1" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'
}

# bench_banner: the machine, the core split and the load average; sets load_start.
bench_banner() {
  echo "== machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "== core split while measuring: recd on CPU(s) $server_cpus, recload on CPU(s) $client_cpus; $sched_desc"
  echo "== results in $out"
  load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
  if machine_busy "${load_start%% *}"; then
    echo "== WARNING: load average ${load_start%% *} on $(nproc) CPUs: other work will inflate the figures (see RECD_BENCH_NICE)"
  fi
}

verdict() { if [[ "$1" == "true" ]]; then echo "MET"; else echo "MISSED"; fi; }
