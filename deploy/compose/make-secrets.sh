#!/bin/sh
# Writes deploy/compose/secrets.env (mode 600, never committed: see .gitignore): the cluster token
# and the NATS user and password that compose.yaml hands to the NATS servers, the coordinator,
# the workers and the submit service as BNN_CLUSTER_TOKEN, BNN_NATS_USER and BNN_NATS_PASS.
#   deploy/compose/make-secrets.sh          creates it (refuses to overwrite)
#   deploy/compose/make-secrets.sh --force  replaces it (restart the whole stack afterwards)
set -eu
out="$(cd "$(dirname "$0")" && pwd)/secrets.env"
if [ -e "$out" ] && [ "${1:-}" != "--force" ]; then
  echo "make-secrets.sh: $out exists; pass --force to replace it" >&2
  exit 1
fi
secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
{
  echo "# made by make-secrets.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); keep it out of git"
  echo "BNN_CLUSTER_TOKEN=$(secret)"
  echo "BNN_NATS_USER=bnn"
  echo "BNN_NATS_PASS=$(secret)"
} > "$out"
echo "make-secrets.sh: wrote $out"
