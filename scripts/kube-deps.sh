#!/usr/bin/env bash
# Builds the Kubernetes parts the admission tests run, and does nothing
# (quickly) when they are there already. Run by scripts/test-deps.sh; safe to
# run by hand.
#
#   kube-apiserver, kubectl   built from the k8s.io/kubernetes Go module at
#                             $KUBE_VERSION, through a wrapper module that
#                             pins each k8s.io staging module to the matching
#                             published v0.x version (k8s.io/kubernetes itself
#                             replaces them with ./staging paths, which a
#                             module download does not have), into
#                             $CACHE/bin (about 8 minutes on 2 cores, once)
#   etcd                      Debian's etcd-server package (never started as
#                             a service: the tests start their own)
#
# CACHE is $CUSTOMS_TEST_CACHE, default $HOME/.cache/customs-test.
set -euo pipefail

KUBE_VERSION="v1.37.2"
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"

CACHE="${CUSTOMS_TEST_CACHE:-$HOME/.cache/customs-test}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

log() { echo "kube-deps: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

# etcd: Debian's package installs and starts a system etcd on 2379; the
# tests run their own on free ports, so the service is stopped and disabled.
if ! command -v etcd >/dev/null; then
	log "apt-get install etcd-server"
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
	$SUDO systemctl disable --now etcd >/dev/null 2>&1 || $SUDO service etcd stop >/dev/null 2>&1 || true
	$SUDO pkill -x etcd 2>/dev/null || true
fi

# The staging modules k8s.io/kubernetes replaces with ./staging paths.
STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
	cloud-provider cluster-bootstrap code-generator component-base component-helpers
	controller-manager cri-api cri-client cri-streaming csi-translation-lib
	dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
	kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
	mount-utils pod-security-admission sample-apiserver streaming)

want="k8s.io/kubernetes@$KUBE_VERSION"
stamp="$BIN/.kube.version"
if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kubectl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	exit 0
fi

log "building kube-apiserver and kubectl $KUBE_VERSION (about 8 minutes, once)"
tmp="$(mktemp -d "$BIN/.kube.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mod="$tmp/mod"
mkdir -p "$mod"
{
	echo "module customs.dev/kubebuild"
	echo
	echo "go 1.26.0"
	echo
	echo "require k8s.io/kubernetes $KUBE_VERSION"
	echo
	for m in "${STAGING[@]}"; do
		echo "replace k8s.io/$m => k8s.io/$m $STAGING_VERSION"
	done
} >"$mod/go.mod"
cat >"$mod/tools.go" <<'EOF'
//go:build tools

package kubebuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
(
	cd "$mod"
	export GOFLAGS=-mod=mod GOTOOLCHAIN=local
	go mod tidy -e >/dev/null 2>&1 || true
	go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
		-o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
	go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
		-o "$tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
)
mv -f "$tmp/kube-apiserver" "$BIN/kube-apiserver"
mv -f "$tmp/kubectl" "$BIN/kubectl"
echo "$want" >"$stamp"
log "kube-apiserver and kubectl $KUBE_VERSION in $BIN"
