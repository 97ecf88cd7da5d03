# shellcheck shell=bash
# Helpers of scripts/deploy-azure.sh (sourced, not run; so are deploy-steps.sh and image.sh).
#
# Every az call goes through az_do (changes something: printed instead of run under --dry-run),
# az_get (read-only: runs in both modes) or present (does a resource exist?). All three refuse an
# argument that contains the shared secret, so a mistake cannot put it in argv.

SCRIPT_NAME=$(basename "$0" .sh)
SECRET=""
OFFLINE=0
: "${DRY_RUN:=0}"

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}
# Bad flags, environment or files: exit 2, before anything was changed.
bad_input() {
  say "error: $*"
  exit 2
}

# Shell-quote for printing: plain words as they are, anything else in single quotes.
quote() {
  local out=() a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//\'/\'\\\'\'}'")
    fi
  done
  printf '%s' "${out[*]}"
}

guard_argv() {
  [[ -n $SECRET ]] || return 0
  local a
  for a in "$@"; do
    [[ $a != *"$SECRET"* ]] || die "refusing to run az $1 $2: the shared secret would be in its argv"
  done
}

# A command that changes the subscription.
az_do() {
  guard_argv "$@"
  if [[ $DRY_RUN -eq 1 ]]; then
    printf '%s\n' "$(quote az "$@")"
    return 0
  fi
  say "+ $(quote az "$@")"
  az "$@"
}

# A read-only query; prints nothing when offline (dry run without a subscription).
az_get() {
  guard_argv "$@"
  [[ $OFFLINE -eq 0 ]] || return 0
  az "$@"
}

# present SHOW-ARGS…: 0 when the resource exists, 1 when az says it does not (exit 3, or a
# NotFound error from older CLIs); any other failure stops the run with az's message.
present() {
  [[ $OFFLINE -eq 0 ]] || return 1
  guard_argv "$@"
  local rc=0 err
  err=$(az "$@" -o none 2>&1) || rc=$?
  [[ $rc -ne 0 ]] || return 0
  if [[ $rc -eq 3 ]] || grep -qiE 'ResourceNotFound|ResourceGroupNotFound|NotFound|could not be found|was not found' <<<"$err"; then
    return 1
  fi
  die "az $(quote "$@") failed (exit $rc): $err"
}

# ensure WHAT SHOW-ARGS… -- CREATE-ARGS…: create unless it exists.
ensure() {
  local what=$1 show=()
  shift
  while [[ $1 != -- ]]; do
    show+=("$1")
    shift
  done
  shift
  if present "${show[@]}"; then
    say "$what: exists, left as it is"
  else
    az_do "$@"
  fi
}

# The stack's shared secret: HAINIT_SECRET, else the secret file (created 0600 when absent, except
# in a dry run, which uses a throw-away one). Hainit takes it verbatim into a double-quoted YAML
# string, so quotes, backslashes and control characters are refused.
default_secret_file() {
  printf '%s/hainit/%s.secret' "${XDG_CONFIG_HOME:-$HOME/.config}" "$1"
}

load_secret() {
  local file=${SECRET_FILE:-$(default_secret_file "$RESOURCE_GROUP")} create=${1:-create}
  if [[ -n ${HAINIT_SECRET:-} ]]; then
    SECRET=$HAINIT_SECRET
    say "shared secret from HAINIT_SECRET"
  elif [[ -f $file ]]; then
    SECRET=$(<"$file")
    local mode
    mode=$(stat -c %a "$file")
    [[ $mode =~ ^[0-7]00$ ]] || say "warning: $file has mode $mode; it holds every password of the stack (chmod 600)"
  elif [[ $create != create ]]; then
    bad_input "no shared secret: $file does not exist (set --secret-file or HAINIT_SECRET)"
  elif [[ $DRY_RUN -eq 1 ]]; then
    SECRET=$(new_secret)
    say "dry run: $file does not exist; a real run creates it (mode 0600)"
  else
    mkdir -p "$(dirname "$file")"
    chmod 0700 "$(dirname "$file")"
    (umask 077 && new_secret >"$file")
    SECRET=$(<"$file")
    say "created the shared secret in $file (mode 0600): keep it, every password derives from it"
  fi
  [[ ${#SECRET} -ge 32 ]] || bad_input "the shared secret is ${#SECRET} characters long; at least 32 are needed"
  [[ $SECRET =~ ^[A-Za-z0-9._~+/=:@%^,-]+$ ]] ||
    bad_input "the shared secret may contain only letters, digits and ._~+/=:@%^,- (it goes into YAML)"
}

new_secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# derive PURPOSE: hainit's hex(HMAC-SHA256(secret, "hainit/" + PURPOSE)) (docs/configuration.md "Secrets"). The
# secret goes to python3 on stdin, never in argv.
derive() {
  python3 -c '
import hashlib, hmac, sys
key = sys.stdin.read().rstrip("\r\n").encode()
print(hmac.new(key, ("hainit/" + sys.argv[1]).encode(), hashlib.sha256).hexdigest())
' "$1" <<<"$SECRET"
}

# ip_int A.B.C.D: the address as an integer (empty output when it is not an IPv4 address).
ip_int() {
  local IFS=. a b c d
  [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
  read -r a b c d <<<"$1"
  ((a < 256 && b < 256 && c < 256 && d < 256)) || return 1
  printf '%d' $(((a << 24) | (b << 16) | (c << 8) | d))
}

# in_subnet IP CIDR: the address is a usable host of the subnet (Azure reserves the first four
# addresses and the last one).
in_subnet() {
  local ip net bits size base
  ip=$(ip_int "$1") || return 1
  net=$(ip_int "${2%/*}") || return 1
  bits=${2#*/}
  [[ $bits =~ ^[0-9]+$ ]] && ((bits >= 8 && bits <= 29)) || return 1
  size=$((1 << (32 - bits)))
  base=$((net & ~(size - 1) & 0xffffffff))
  ((ip >= base + 4 && ip < base + size - 1))
}

valid_cidr() {
  local net bits=${1#*/}
  [[ $1 == */* ]] && net=$(ip_int "${1%/*}") && [[ $bits =~ ^[0-9]+$ ]] && ((bits >= 8 && bits <= 29)) || return 1
  (((net & ((1 << (32 - bits)) - 1)) == 0))
}

valid_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)); }

# host_ok NAME: usable as an Azure VM name and a Linux host name (DRBD and corosync use it).
host_ok() { [[ $1 =~ ^[a-z][a-z0-9-]{0,62}$ && $1 != *- ]]; }
