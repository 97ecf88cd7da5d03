#!/usr/bin/env bash
# failover-drill.sh: the how-to's failover drill against a real deployment (scripts/deploy-azure.sh),
# the lab's drill (scripts/lab) with Azure's own levers. A WordPress post is written through the
# public load balancer after each event, and every post must be readable at the end:
#
#   post 1; deallocate the DRBD standby -> post 2; start it, wait for UpToDate/UpToDate;
#   power off the primary without shutdown (what fence_azure_arm does) -> post 3, and the survivor
#   must be Primary; start it, wait for the resync; for each web VM: deallocate -> post; start,
#   wait for its /healthz and the LB probe; read every post through the LB (several times: new
#   flows hash to every web node); the DB pair healthy at the end.
#
# Posts go through WordPress' XML-RPC (wp.newPost) as the admin, whose password hainit derives from
# the shared secret (README "Secrets"); it reaches curl on stdin, never argv. DRBD state comes from
# `az vm run-command` (drbdadm role/dstate), so no SSH path into the VNet is needed.
# Report (the lab's format): OUT/report.md (also printed) and OUT/report.json. Exit 0 = PASS.
# shellcheck disable=SC2317 # the checks below run through step/wait_for (invoked indirectly)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)

usage() {
  cat <<'EOF'
usage: scripts/failover-drill.sh [options]       (options also read HAINIT_<OPTION>, as deploy-azure.sh)

  --resource-group RG   hainit-wp
  --db-names "A B"      "db-a db-b"
  --web-names "A B …"   "web-1 web-2"
  --url URL             http://<public IP of hainit-web-ip>
  --secret-file FILE    ~/.config/hainit/<resource-group>.secret (or HAINIT_SECRET)
  --wp-user USER        wpadmin (hainit's web.admin_user)
  --out DIR             ./drill-<UTC time>
  --timeout SECONDS     900: the limit of every wait and of every post's retries
  --poll SECONDS        10: between two looks at DRBD or HTTP
  --lb-settle SECONDS   15: after a web VM is healthy again, for the LB probe (5 s x 2) to see it
EOF
}

env_or() { local v="HAINIT_$1"; printf '%s' "${!v:-$2}"; }
RESOURCE_GROUP=$(env_or RESOURCE_GROUP hainit-wp)
DB_NAMES=$(env_or DB_NAMES "db-a db-b")
WEB_NAMES=$(env_or WEB_NAMES "web-1 web-2")
URL=$(env_or URL "")
SECRET_FILE=$(env_or SECRET_FILE "")
WP_USER=$(env_or WP_USER wpadmin)
OUT=$(env_or OUT "")
TIMEOUT=$(env_or TIMEOUT 900)
POLL=$(env_or POLL 10)
LB_SETTLE=$(env_or LB_SETTLE 15)

# shellcheck source=scripts/azure/lib.sh
. "$HERE/azure/lib.sh"

while [[ $# -gt 0 ]]; do
  case $1 in
  -h | --help)
    usage
    exit 0
    ;;
  esac
  [[ $# -ge 2 ]] || bad_input "$1 needs a value (see --help)"
  case $1 in
  --resource-group) RESOURCE_GROUP=$2 ;;
  --db-names) DB_NAMES=$2 ;;
  --web-names) WEB_NAMES=$2 ;;
  --url) URL=$2 ;;
  --secret-file) SECRET_FILE=$2 ;;
  --wp-user) WP_USER=$2 ;;
  --out) OUT=$2 ;;
  --timeout) TIMEOUT=$2 ;;
  --poll) POLL=$2 ;;
  --lb-settle) LB_SETTLE=$2 ;;
  *) bad_input "unknown option $1 (see --help)" ;;
  esac
  shift 2
done

IFS=$', \t\n' read -ra DBS <<<"$DB_NAMES" || true
IFS=$', \t\n' read -ra WEBS <<<"$WEB_NAMES" || true
[[ ${#DBS[@]} -eq 2 ]] || bad_input "--db-names '$DB_NAMES': the two db VMs"
[[ ${#WEBS[@]} -ge 1 ]] || bad_input "--web-names: at least one web VM"
for n in "${DBS[@]}" "${WEBS[@]}"; do
  host_ok "$n" || bad_input "VM name '$n' is not valid"
done
[[ $WP_USER =~ ^[A-Za-z0-9_.@-]{1,60}$ ]] || bad_input "--wp-user '$WP_USER' is not a WordPress user name"
for v in TIMEOUT POLL LB_SETTLE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || bad_input "--$(tr '[:upper:]_' '[:lower:]-' <<<"$v") '${!v}' is not a number of seconds"
done
command -v curl >/dev/null || bad_input "curl is needed"
command -v python3 >/dev/null || bad_input "python3 is needed"
load_secret nocreate
PASSWORD=$(derive wordpress-admin)

now() { printf '%s' "${EPOCHREALTIME:-$(date +%s)}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-./drill-$RUN_ID}
mkdir -p "$OUT"
: >"$OUT/steps.tsv"
: >"$OUT/posts.tsv"
: >"$OUT/timings.tsv"
: >"$OUT/notes.txt"
: >"$OUT/failed.txt"
T_START=$(now)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LAST_ERROR=""

note() {
  say "$*"
  printf '%s\n' "$*" >>"$OUT/notes.txt"
}
timing() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/timings.tsv"; }

# finish CODE [ERROR]: write report.json and report.md, print the report, exit.
finish() {
  local code=$1 error=${2:-}
  trap - INT TERM
  error=${error//[$'\n\t']/ }
  printf 'run_id\t%s\nstarted\t%s\nseconds\t%s\nok\t%s\nerror\t%s\nresource_group\t%s\nurl\t%s\ndb_names\t%s\nweb_names\t%s\ntimeout_s\t%s\npoll_s\t%s\nlb_settle_s\t%s\n' \
    "$RUN_ID" "$STARTED" "$(since "$T_START")" "$((code == 0))" "$error" "$RESOURCE_GROUP" "$URL" "${DBS[*]}" \
    "${WEBS[*]}" "$TIMEOUT" "$POLL" "$LB_SETTLE" >"$OUT/meta.tsv"
  python3 "$HERE/azure/drill-report.py" "$OUT" || say "error: could not write the report"
  [[ ! -f $OUT/report.md ]] || cat "$OUT/report.md"
  exit "$code"
}
trap 'finish 130 interrupted' INT TERM

# step NAME COMMAND…: one recorded step; a failure ends the drill (report written, exit 1).
step() {
  local name=$1 t0 rc=0
  shift
  say "step: $name"
  t0=$(now)
  "$@" || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$(since "$t0")" "$((rc == 0))" >>"$OUT/steps.tsv"
  if [[ $rc -ne 0 ]]; then
    printf '%s: %s\n' "$name" "$LAST_ERROR" >>"$OUT/failed.txt"
    finish 1 "$name: $LAST_ERROR"
  fi
}

# wait_for WHAT COMMAND…: poll until the command succeeds or --timeout passes.
wait_for() {
  local what=$1 t0
  shift
  t0=$(now)
  until "$@"; do
    if awk -v a="$t0" -v b="$(now)" -v t="$TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
      LAST_ERROR="timed out after ${TIMEOUT}s waiting for $what${LAST_ERROR:+ (last: $LAST_ERROR)}"
      return 1
    fi
    sleep "$POLL"
  done
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1" || true; }
healthz_ok() {
  local code
  code=$(http_code "$URL/healthz")
  [[ $code == 200 ]] || {
    LAST_ERROR="$URL/healthz answered $code"
    return 1
  }
}

run_on() { # VM SCRIPT: stdout of a shell script run by the Azure VM agent
  az_get vm run-command invoke -g "$RESOURCE_GROUP" -n "$1" --command-id RunShellScript --scripts "$2" \
    --query 'value[0].message' -o tsv 2>/dev/null
}

# shellcheck disable=SC2016 # expanded on the VM
DB_PROBE='r=$(drbdadm role all 2>/dev/null | head -n1); d=$(drbdadm dstate all 2>/dev/null | head -n1); echo "hainit_role=${r%%/*}"; echo "hainit_dstate=$d"'
# shellcheck disable=SC2016 # expanded on the VM
WEB_PROBE='echo "hainit_healthz=$(curl -s -o /dev/null -w %{http_code} --max-time 5 http://127.0.0.1/healthz)"'

# Sets PRIMARY, STANDBY and PAIR (a one-line summary); healthy = one Primary, both UpToDate.
pair_healthy() {
  local vm out role dstate primaries=0 uptodate=0
  PAIR="" PRIMARY="" STANDBY=""
  for vm in "${DBS[@]}"; do
    out=$(run_on "$vm" "$DB_PROBE") || out=""
    role=$(sed -n 's/^hainit_role=//p' <<<"$out" | head -n1)
    dstate=$(sed -n 's/^hainit_dstate=//p' <<<"$out" | head -n1)
    PAIR+="$vm=${role:-unreachable}:${dstate:--} "
    if [[ $role == Primary ]]; then
      PRIMARY=$vm
      primaries=$((primaries + 1))
    else
      STANDBY=$vm
    fi
    [[ $dstate != UpToDate/UpToDate ]] || uptodate=$((uptodate + 1))
  done
  PAIR=${PAIR% }
  [[ $primaries -eq 1 && $uptodate -eq 2 ]] || {
    LAST_ERROR="DB pair: $PAIR"
    return 1
  }
}

web_healthy() { # VM: its own /healthz answers 200
  local out
  out=$(run_on "$1" "$WEB_PROBE") || out=""
  [[ $out == *hainit_healthz=200* ]] || {
    LAST_ERROR="$1: /healthz: ${out:-no answer}"
    return 1
  }
}

xmlrpc_post() { # TITLE: sets POST_ID, or LAST_ERROR and fails
  local resp id
  resp=$(printf '<?xml version="1.0"?><methodCall><methodName>wp.newPost</methodName><params><param><value><int>1</int></value></param><param><value><string>%s</string></value></param><param><value><string>%s</string></value></param><param><value><struct><member><name>post_type</name><value><string>post</string></value></member><member><name>post_status</name><value><string>publish</string></value></member><member><name>post_title</name><value><string>%s</string></value></member><member><name>post_content</name><value><string>written by scripts/failover-drill.sh</string></value></member></struct></value></param></params></methodCall>' \
    "$WP_USER" "$PASSWORD" "$1" | curl -sS --max-time 15 -H 'Content-Type: text/xml' --data-binary @- "$URL/xmlrpc.php" 2>&1) || {
    LAST_ERROR="xmlrpc: ${resp:0:200}"
    return 1
  }
  id=$(python3 -c '
import sys, xmlrpc.client
try:
    print(int(xmlrpc.client.loads(sys.stdin.read())[0][0]))
except xmlrpc.client.Fault as f:
    sys.exit("fault %s: %s" % (f.faultCode, f.faultString))
except Exception as e:
    sys.exit("not an XML-RPC answer (%s)" % type(e).__name__)
' <<<"$resp" 2>&1) || {
    resp=${resp//[$'\n\t']/ }
    LAST_ERROR="xmlrpc: $id; answer: ${resp:0:160}"
    return 1
  }
  POST_ID=$id
}

# post N: write post N through the public LB, retrying until --timeout; records it.
post() {
  local n=$1 title="hainit azure drill $RUN_ID post $1" t0 attempts=0 id=""
  t0=$(now)
  while :; do
    attempts=$((attempts + 1))
    if xmlrpc_post "$title"; then
      id=$POST_ID
      break
    fi
    if awk -v a="$t0" -v b="$(now)" -v t="$TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
      LAST_ERROR="post $n not written within ${TIMEOUT}s after $attempts attempts (last: $LAST_ERROR)"
      return 1
    fi
    sleep 1
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$id" "$title" "$(now)" "$attempts" "$(since "$t0")" >>"$OUT/posts.tsv"
  say "post $n written (id $id, $attempts attempt(s))"
}

read_posts() { # every post, read `tries` times through the LB, has its title
  local n id title got bad="" try
  while IFS=$'\t' read -r n id title _; do
    for try in 1 2 3 4; do
      got=$(curl -s --max-time 10 "$URL/?rest_route=/wp/v2/posts/$id" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["title"]["rendered"])' 2>/dev/null) || got=""
      [[ $got == "$title" ]] || bad+="post $n (id $id) read $try: '${got:-nothing}'; "
    done
  done <"$OUT/posts.tsv"
  [[ -z $bad ]] || {
    LAST_ERROR="not readable through the LB: $bad"
    return 1
  }
}

power() { # ACTION VM: deallocate | kill | start
  case $1 in
  deallocate) az_do vm deallocate -g "$RESOURCE_GROUP" -n "$2" -o none ;;
  kill) az_do vm stop -g "$RESOURCE_GROUP" -n "$2" --skip-shutdown -o none ;;
  start) az_do vm start -g "$RESOURCE_GROUP" -n "$2" -o none ;;
  esac || {
    LAST_ERROR="az vm $1 $2 failed"
    return 1
  }
}

survivor_is_primary() {
  pair_healthy || true
  [[ $PRIMARY == "$1" ]] || {
    LAST_ERROR="after the kill the primary is '${PRIMARY:-none}', expected $1 ($PAIR)"
    return 1
  }
}

if [[ -z $URL ]]; then
  ip=$(az_get network public-ip show -g "$RESOURCE_GROUP" -n hainit-web-ip --query ipAddress -o tsv) ||
    bad_input "no public IP hainit-web-ip in $RESOURCE_GROUP (az login? deployed? or pass --url)"
  URL="http://$ip"
fi
URL=${URL%/}
say "drill against $URL (resource group $RESOURCE_GROUP); report in $OUT"

step "public LB answers /healthz" wait_for "$URL/healthz" healthz_ok
step "DB pair healthy" wait_for "the DB pair" pair_healthy
step "post 1" post 1

standby=$STANDBY primary=$PRIMARY
note "initial primary $primary, standby $standby"
t0=$(now)
step "deallocate the standby ($standby)" power deallocate "$standby"
step "post 2 (standby down)" post 2
timing standby_stop_to_post_s "$(since "$t0")"
t0=$(now)
step "start $standby" power start "$standby"
step "DRBD UpToDate on both" wait_for "the DB pair" pair_healthy
timing standby_restart_to_uptodate_s "$(since "$t0")"

primary=$PRIMARY standby=$STANDBY
note "killing primary $primary (power off without shutdown)"
t_kill=$(now)
step "power off the primary ($primary)" power kill "$primary"
timing failover_stop_api_s "$(since "$t_kill")"
step "post 3 (after failover)" post 3
timing failover_kill_to_post_s "$(since "$t_kill")"
step "$standby is the primary" survivor_is_primary "$standby"
t0=$(now)
step "start $primary" power start "$primary"
step "resync: DRBD UpToDate on both" wait_for "the DB pair" pair_healthy
timing killed_primary_restart_to_uptodate_s "$(since "$t0")"
note "after the restart: $PAIR"

k=0 n=4
for web in "${WEBS[@]}"; do
  k=$((k + 1))
  t0=$(now)
  step "deallocate $web" power deallocate "$web"
  step "post $n ($web down)" post "$n"
  timing "web${k}_stop_to_post_s" "$(since "$t0")"
  n=$((n + 1))
  t0=$(now)
  step "start $web" power start "$web"
  step "$web serves /healthz" wait_for "$web's /healthz" web_healthy "$web"
  sleep "$LB_SETTLE"
  timing "web${k}_start_to_lb_up_s" "$(since "$t0")"
done

step "every post readable through the public LB" read_posts
step "DB pair healthy at the end" wait_for "the DB pair" pair_healthy
note "end: $PAIR"
finish 0
