#!/usr/bin/env bash
# make lab-image: the lab's copy of hainit's Azure image — that VHD, untouched, plus a small layer.
#
#   images/lab/build.sh          (as root, after make azure-image)
#
# The layer (images/lab/layer.py: each change and its reason; docs/lab.md) is written with debugfs
# into a sparse copy of the VHD; the clusters that differ go into a qcow2 overlay whose backing file
# is the VHD in the image cache (qemu-img compare proves the overlay reads as the edited copy). The lab's VMs boot it the way
# Azure boots the image, through its own boot loader under UEFI firmware (OVMF), and each VM's
# disk is an overlay of this one. The VHD is never written: the lab's report names its sha256,
# the same as target/images/hainit-debian12.vhd.sha256.
#
# Cached under $CACHE/images/<key>/ (lab.qcow2, image.json; images/current -> newest); the key is
# the VHD's sha256, the layer's files and this script.
set -euo pipefail
self=$(readlink -f "$0")
here=$(dirname "$self")
CACHE=${HAINIT_IMAGE_CACHE:-/var/tmp/hainit-image}
NAME=hainit-debian12

log() { printf 'lab-image: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" -eq 0 ] || die "needs root (the image cache is root's)"
for tool in qemu-img debugfs e2fsck python3 ssh-keygen flock; do
  command -v "$tool" >/dev/null || die "$tool not found (.ci/run installs the image's host packages)"
done
base=$(readlink -f "$CACHE/azure/current" 2>/dev/null) || true
if [ -z "$base" ] || [ ! -f "$base/image.json" ]; then
  die "no Azure image in $CACHE/azure: run make azure-image"
fi
vhd=$base/$NAME.vhd
vhd_sha=$(cut -d' ' -f1 "$vhd.sha256")
offset=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["root_partition"]["offset_bytes"])' \
  "$base/image.json")

mkdir -p "$CACHE/images"
exec 9>"$CACHE/.build.lock"
flock -w 3600 9 || die "another image build holds $CACHE/.build.lock"
T0=$(now)
[ -f "$CACHE/id_lab" ] || ssh-keygen -q -t ed25519 -N '' -C hainit-lab -f "$CACHE/id_lab"

key=$( {
  echo "$vhd_sha $vhd"
  sha256sum "$self" "$here/layer.py" "$CACHE/id_lab.pub" | cut -d' ' -f1
  (cd "$here/guest" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
} | sha256sum | cut -c1-16)
out=$CACHE/images/$key

# For the lab's report: was the image of this invocation cached or built, and how long it took.
last_run() { printf '{"key": "%s", "cached": %s, "seconds": %s, "at": %s}\n' "$key" "$1" "$2" "$(date +%s)" \
  >"$CACHE/images/last-run.json"; }
current() { ln -sfn "$key" "$CACHE/images/current.new" && mv -T "$CACHE/images/current.new" "$CACHE/images/current"; }

if [ -f "$out/image.json" ]; then
  current
  last_run true "$(since "$T0")"
  log "up to date: $out (key $key, base $NAME.vhd sha256 $vhd_sha)"
  exit 0
fi

trap 'rm -rf "$out.new"' EXIT
rm -rf "$out.new" && mkdir -p "$out.new"
log "layer $key on $vhd (sha256 $vhd_sha)"
# A fixed VHD is the raw disk and a 512-byte footer: the copy without it is the raw disk.
cp --sparse=always "$vhd" "$out.new/lab.raw"
truncate -s -512 "$out.new/lab.raw"
python3 "$here/layer.py" apply "$out.new/lab.raw" "$offset" "$CACHE/id_lab.pub" || die "the lab layer failed"
python3 "$here/layer.py" overlay "$out.new/lab.raw" "$vhd" "$out.new/lab.qcow2" >"$out.new/overlay.json" ||
  die "the lab layer's overlay failed"
rm -f "$out.new/lab.raw"
[ "$(cut -d' ' -f1 "$vhd.sha256")" = "$vhd_sha" ] || die "$vhd.sha256 changed during the build"
seconds=$(since "$T0")
python3 - "$base/image.json" "$out.new" "$vhd" "$key" "$seconds" "$here/layer.py" <<'EOF'
import json, os, subprocess, sys, time
base_json, out, vhd, key, seconds, layer = sys.argv[1:]
overlay = json.load(open(os.path.join(out, "overlay.json")))
base = json.load(open(base_json))
changes = json.loads(subprocess.run([sys.executable, layer, "list"], capture_output=True, text=True,
                                    check=True).stdout)
image = {"key": key, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
         "base": {"vhd": vhd, "vhd_sha256": base["vhd_sha256"], "key": base["key"],
                  "built_at": base["built_at"], "seconds": base["seconds"], "kernel": base["kernel"],
                  "versions": base.get("versions", {})},
         "lab_layer": {"qcow2_bytes": os.path.getsize(os.path.join(out, "lab.qcow2")),
                       "changed_bytes": overlay["bytes"], "changed_runs": overlay["runs"], "changes": changes},
         "hainit_sha256": base["hainit_sha256"], "wordpress_sha256": base["wordpress_sha256"],
         "seconds": {"lab_layer": float(seconds), "total": float(seconds)}}
json.dump(image, open(os.path.join(out, "image.json"), "w"), indent=2)
EOF
rm -rf "$out" && mv -T "$out.new" "$out"
trap - EXIT
current
last_run false "$seconds"
# Keep the newest two (a lab still running may use the previous one).
find "$CACHE/images" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +3 | cut -d' ' -f2- |
  xargs -r rm -rf
log "built $out in $seconds s: lab.qcow2 $(stat -c %s "$out/lab.qcow2") bytes over $NAME.vhd (sha256 $vhd_sha)"
