#!/usr/bin/env bash
# Build a standard WordPress tarball from Debian's `wordpress` package and print its sha256.
#
#   scripts/wordpress-tarball.sh OUT.tar.gz      (stdout: the sha256 hex digest, nothing else)
#
# wordpress.org is not reachable from the build machines, so the image and the lab bake this tarball
# (hainit's web.wordpress_tarball, pinned by web.wordpress_sha256). The result looks like an upstream
# release: one top directory `wordpress/`, symlinks dereferenced (Debian links getid3, underscore and
# cropper to other packages), none of Debian's glue (its wp-config.php that reads /etc/wordpress, the
# .htaccess link), and a default wp-content (index.php files, akismet, the installed themes).
# The archive is reproducible: same package versions in, same bytes and sha256 out.
#
# Needs: wordpress and at least one theme (wordpress-theme-twentytwentythree, which wordpress only
# recommends) — WordPress without a theme serves an empty front page.
# WORDPRESS_SRC overrides the source tree (default /usr/share/wordpress).
set -euo pipefail

usage() { echo "usage: $0 OUT.tar.gz" >&2; exit 2; }
[ $# -eq 1 ] || usage
out=$1
src=${WORDPRESS_SRC:-/usr/share/wordpress}

[ -f "$src/wp-includes/version.php" ] || {
  echo "wordpress-tarball: $src/wp-includes/version.php not found (apt-get install wordpress)" >&2
  exit 1
}
themes=$(find "$src/wp-content/themes" -mindepth 2 -maxdepth 2 -name style.css 2>/dev/null | wc -l)
[ "$themes" -gt 0 ] || {
  echo "wordpress-tarball: no theme under $src/wp-content/themes" \
    "(apt-get install wordpress-theme-twentytwentythree)" >&2
  exit 1
}

work=$(mktemp -d)
# The archive is written beside OUT and renamed into place: a failed run leaves no partial OUT.
tmp_out="$out.tmp.$$"
trap 'rm -rf "$work" "$tmp_out"' EXIT
tree=$work/wordpress

# cp -L dereferences every symlink; a dangling one fails the copy instead of shipping a broken link.
# Debian's glue is left out: wp-config.php (includes /etc/wordpress/config-*.php) and .htaccess.
mkdir "$tree"
for entry in "$src"/* "$src"/.[!.]*; do
  [ -e "$entry" ] || [ -L "$entry" ] || continue
  case "$(basename "$entry")" in
    wp-config.php | .htaccess) continue ;;
  esac
  cp -RL --no-preserve=ownership "$entry" "$tree/"
done

# Upstream ships these "Silence is golden" guards; Debian keeps some of them elsewhere.
for dir in wp-content wp-content/plugins wp-content/themes; do
  mkdir -p "$tree/$dir"
  [ -e "$tree/$dir/index.php" ] || printf '<?php\n// Silence is golden.\n' >"$tree/$dir/index.php"
done

version=$(sed -n "s/^\$wp_version = '\(.*\)';/\1/p" "$tree/wp-includes/version.php")
mtime=$(stat -c %Y "$src/wp-includes/version.php")

tar --sort=name --mtime="@$mtime" --owner=0 --group=0 --numeric-owner \
  --mode='u=rwX,go=rX' --format=gnu -C "$work" -cf - wordpress | gzip -n -9 >"$tmp_out"
mv -f "$tmp_out" "$out"

echo "wordpress-tarball: WordPress $version -> $out" >&2
sha256sum "$out" | cut -d' ' -f1
