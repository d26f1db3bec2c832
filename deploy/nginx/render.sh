#!/usr/bin/env bash
# Renders recd-grpc.conf.template into an nginx http{}-level include on stdout.
#
# Usage: render.sh --listen=ADDR:PORT --primary=HOST:PORT [--replica=HOST:PORT ...]
#                  [--no-primary-reads] [--access-log=PATH|off] [--max-fails=1] [--fail-timeout=10s]
#   --primary           the replica that takes writes and administration (also serves reads
#                       unless --no-primary-reads)
#   --replica           a read replica (repeat)
set -euo pipefail

listen="" primary="" access_log="/var/log/nginx/recd-access.log"
max_fails=1 fail_timeout=10s primary_reads=1
replicas=()
for arg in "$@"; do
  case "$arg" in
    --listen=*) listen="${arg#*=}" ;;
    --primary=*) primary="${arg#*=}" ;;
    --replica=*) replicas+=("${arg#*=}") ;;
    --no-primary-reads) primary_reads=0 ;;
    --access-log=*) access_log="${arg#*=}" ;;
    --max-fails=*) max_fails="${arg#*=}" ;;
    --fail-timeout=*) fail_timeout="${arg#*=}" ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "render.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
if [ -z "$listen" ] || [ -z "$primary" ]; then
  echo "render.sh: --listen and --primary are required" >&2
  exit 2
fi
read_pool=("${replicas[@]}")
if [ "$primary_reads" = 1 ]; then read_pool=("$primary" "${replicas[@]}"); fi
if [ ${#read_pool[@]} -eq 0 ]; then
  echo "render.sh: no server for reads (give --replica or drop --no-primary-reads)" >&2
  exit 2
fi

read_servers=""
for s in "${read_pool[@]}"; do
  read_servers+="    server ${s} max_fails=${max_fails} fail_timeout=${fail_timeout};"$'\n'
done
primary_server="    server ${primary};"

template="$(dirname "$0")/recd-grpc.conf.template"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    @READ_SERVERS@) printf '%s' "$read_servers" ;;
    @PRIMARY_SERVER@) printf '%s\n' "$primary_server" ;;
    *@ACCESS_LOG@*)
      if [ "$access_log" = off ]; then printf '    access_log off;\n'; else printf '%s\n' "${line//@ACCESS_LOG@/$access_log}"; fi ;;
    *)
      line="${line//@LISTEN@/$listen}"
      printf '%s\n' "$line"
      ;;
  esac
done < "$template"
