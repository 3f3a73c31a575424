#!/usr/bin/env bash
# Builds lire and runs its quick tests against a LibTorch 2.x on a CPU-only
# Debian 12 machine: Debian 13 (trixie) packages LibTorch 2.6, so this makes
# a trixie chroot (debootstrap, Debian's mirror only), installs the same
# packages scripts/setup.sh names there, clones this checkout's HEAD into it
# and runs scripts/test.sh inside. Needs root. Idempotent: the chroot, its
# packages, ccache and build/ are reused; a new HEAD is fetched into the clone.
#
#   scripts/libtorch2.sh            build and run the quick tests
#   LIRE_CHROOT=/srv/x scripts/libtorch2.sh   another chroot folder
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CHROOT=${LIRE_CHROOT:-/srv/lire-trixie}
MIRROR=${LIRE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

[ "$(id -u)" -eq 0 ] || { echo "libtorch2.sh: needs root (debootstrap, chroot)" >&2; exit 2; }
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
install_missing libtorch2 debootstrap

if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
  echo "libtorch2: debootstrap trixie into $CHROOT"
  debootstrap --variant=minbase trixie "$CHROOT" "$MIRROR" >/dev/null
fi
mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
mountpoint -q "$CHROOT/dev" || mount --bind /dev "$CHROOT/dev"
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"

# A clone of HEAD (committed work only), updated in place.
if [ ! -d "$CHROOT/root/lire/.git" ]; then
  git clone -q "$ROOT" "$CHROOT/root/lire"
else
  git -C "$CHROOT/root/lire" fetch -q "$ROOT" HEAD
  git -C "$CHROOT/root/lire" checkout -q --detach FETCH_HEAD
fi
echo "libtorch2: testing $(git -C "$CHROOT/root/lire" log -1 --format='%h %s')"

# scripts/test.sh installs what is missing (Debian 13's LibTorch 2.6 among
# them) and runs the quick tests and the sanitizer suite.
chroot "$CHROOT" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  bash -c 'cd /root/lire && ./scripts/test.sh'
