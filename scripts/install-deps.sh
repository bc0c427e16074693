#!/usr/bin/env bash
# Installs the Debian packages the suite needs, and nothing when they are all present.
# Not root or no apt: exits 2 naming the packages and the command to run.
# Later issues extend DEB_PACKAGES (and COMMAND_OF for machines without dpkg).
set -euo pipefail

# qemu-utils: the oracle and the QEMU implementation; make, g++, python3: node-gyp builds
# the reference's small native helper (native/hostfile.c) during npm install.
DEB_PACKAGES=(qemu-utils make g++ python3)
# qemu-block-extra: qemu's protocol modules (iscsi, ssh, gluster, curl) and dmg's bzip2.
# Producers and second readers for fixtures and cross-checks: bximage (bochs), cloop-utils
# (create_compressed_fs / extract_compressed_fs), dmg2img, bzip2, cryptsetup-bin (LUKS1),
# dosfstools and mtools (virtual FAT checks).
DEB_PACKAGES+=(qemu-block-extra bximage cloop-utils dmg2img bzip2 cryptsetup-bin dosfstools mtools)
# NBD peers: nbdkit (server), libnbd-bin (nbdinfo, nbdcopy), qemu-system-common (qemu-storage-daemon).
DEB_PACKAGES+=(nbdkit libnbd-bin qemu-system-common)
# Third-party readers compared with QEMU (issue 10): libyal's Python bindings, for Debian's /usr/bin/python3.
DEB_PACKAGES+=(python3-libqcow python3-libvmdk python3-libvhdi python3-libluksde)
# The matrix page's test (test/matrix-chromium.test.ts) drives Debian's chromium through playwright-core.
DEB_PACKAGES+=(chromium)
# iSCSI peer: tgt (tgtd, the user-space SCSI target, and tgtadm).
DEB_PACKAGES+=(tgt)
# SSH and GlusterFS peers: a private sshd (+ ssh-agent, sftp-server); glusterd with a one-brick volume.
DEB_PACKAGES+=(openssh-server glusterfs-server)
# libgfapi's headers (glusterfs/api/glfs.h): node-gyp builds the reference's GlusterFS client
# addon (native/gluster.c) only when they are present, so they must be there before `npm ci`.
DEB_PACKAGES+=(libglusterfs-dev)

# A command each package provides: the check used instead of dpkg (also where a
# toolchain came from elsewhere, e.g. a python3 outside Debian's packages).
declare -A COMMAND_OF=(
  [qemu-utils]=qemu-img
  [make]=make
  [g++]=g++
  [python3]=python3
  [bximage]=bximage
  [cloop-utils]=create_compressed_fs
  [dmg2img]=dmg2img
  [bzip2]=bzip2
  [cryptsetup-bin]=cryptsetup
  [dosfstools]=fsck.fat
  [mtools]=mcopy
  [nbdkit]=nbdkit
  [openssh-server]=sshd
  [glusterfs-server]=glusterd
  [libnbd-bin]=nbdinfo
  [qemu-system-common]=qemu-storage-daemon
  [tgt]=tgtd
  [chromium]=chromium
)

installed() {
  local pkg=$1
  command -v "${COMMAND_OF[$pkg]:-$pkg}" >/dev/null 2>&1 && return 0
  if command -v dpkg-query >/dev/null 2>&1; then
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" == "install ok installed" ]]
  else
    command -v "${COMMAND_OF[$pkg]:-$pkg}" >/dev/null 2>&1
  fi
}

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all present (${DEB_PACKAGES[*]})"
  exit 0
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing Debian package(s): ${missing[*]}" >&2
  echo "install-deps: install them as root with:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 2
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

still=()
for pkg in "${missing[@]}"; do
  installed "$pkg" || still+=("$pkg")
done
if [[ ${#still[@]} -gt 0 ]]; then
  echo "install-deps: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${missing[*]}"
