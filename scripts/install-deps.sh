#!/usr/bin/env bash
# Installs every Debian 12 package fmrecon's build, tests and benchmarks use, and nothing already present.
# Runs as root, or through sudo. --no-install-recommends keeps the set small (see docs/install.md).
set -euo pipefail
pkgs=(
    build-essential cmake pkg-config
    openmpi-bin libopenmpi-dev
    libfftw3-dev libfftw3-mpi-dev
    libdnnl-dev ocl-icd-opencl-dev
    libpetsc-complex-dev
    libhdf5-openmpi-dev
    libcjson-dev libssl-dev libxml2-dev liblapacke-dev libopenblas0-pthread libgsl-dev libpng-dev
    libcmocka-dev valgrind clang libclang-rt-14-dev lmod
    slurm-wlm munge
    python3-numpy python3-h5py python3-scipy python3-skimage python3-torch python3-matplotlib
    bart
    libmatio-dev
    libdcmtk-dev dcmtk dicom3tools libnifti2-dev libgif-dev libfreetype-dev fonts-dejavu-core
    python3-nibabel python3-pydicom python3-pil
)
missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#pkgs[@]} packages present"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
