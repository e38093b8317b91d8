#!/usr/bin/env bash
# Installs everything the tests need on a Debian 12 machine, and does nothing
# (quickly) when it is all there already. Run by scripts/test.sh; safe to run
# by hand and to run twice at once.
#
#   Debian packages  skopeo, podman (its login), mmdebstrap, slapd and ldap-utils (never started
#                    as a service), and PostgreSQL when nothing answers on
#                    127.0.0.1:5432 (then it is also started)
#   Go tools         crane, oras, regctl, the OCI conformance suite, the
#                    CNCF distribution registry, govulncheck and syft, pinned, built into
#                    $CACHE/bin (stamp files record which version is there)
#   Test images      a Debian bookworm OCI layout built with mmdebstrap from
#                    Debian's archive, in $CACHE/images/debian-bookworm
#   Kubernetes       etcd (Debian's etcd-server), kube-apiserver and kubectl
#                    built from the k8s.io/kubernetes module, for test/kube
#                    (scripts/kube-deps.sh; about 8 minutes once, then cached)
#
# CACHE is $CUSTOMS_TEST_CACHE, default $HOME/.cache/customs-test. It survives
# between runs; delete it to rebuild everything.
#
# Network: only Debian's archive (apt, mmdebstrap) and the Go module proxy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CUSTOMS_TEST_CACHE:-$HOME/.cache/customs-test}"
BIN="$CACHE/bin"
IMAGES="$CACHE/images"
mkdir -p "$BIN" "$IMAGES"
# Leftovers of runs that were killed (SIGKILL skips their cleanup); an hour
# old, so a build running at the same time is left alone.
find "$BIN" "$IMAGES" -maxdepth 1 -name '.*.*' -type d -mmin +60 -exec rm -rf {} + 2>/dev/null || true

log() { echo "test-deps: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

# --- Debian packages --------------------------------------------------------

apt_updated=""
apt_install() {
	if [ -z "$apt_updated" ]; then
		log "apt-get update"
		$SUDO apt-get update -qq
		apt_updated=1
	fi
	log "apt-get install $*"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v podman >/dev/null || missing+=(podman)
if [ "${#missing[@]}" -gt 0 ]; then
	apt_install "${missing[@]}"
fi

# OpenLDAP: the LDAP login tests start their own slapd (cn=config from an
# LDIF, a free loopback port, a temp directory) and load it with ldapadd. The
# package must not configure or start a system slapd on port 389: debconf is
# told to skip its configuration, and a policy-rc.d answering 101 ("action
# forbidden") keeps invoke-rc.d from starting it. One already in place (as in
# Docker images) is left alone; ours is removed afterwards.
if ! command -v slapd >/dev/null && [ ! -x /usr/sbin/slapd ] || ! command -v ldapadd >/dev/null; then
	echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
	policy=/usr/sbin/policy-rc.d
	ours=""
	if [ ! -e "$policy" ]; then
		$SUDO sh -c "printf '#!/bin/sh\n# customs-test: no services started by apt-get\nexit 101\n' > $policy && chmod 755 $policy"
		ours=1
	fi
	apt_install slapd ldap-utils
	if [ -n "$ours" ] && $SUDO grep -q '^# customs-test' "$policy"; then
		$SUDO rm -f "$policy"
	fi
fi

# PostgreSQL: the store conformance suite runs against a real server at
# postgres://postgres@127.0.0.1:5432/test with trust auth on loopback. When a
# server answers there it is used as it is; otherwise the Debian one is
# installed (if needed), set to trust loopback connections and started.
pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! command -v pg_isready >/dev/null || ! command -v psql >/dev/null; then
	apt_install postgresql-client
fi
if ! pg_answers; then
	if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
		apt_install postgresql postgresql-client
	fi
	ver="$(ls /etc/postgresql | sort -V | tail -1)"
	hba="/etc/postgresql/$ver/main/pg_hba.conf"
	if ! $SUDO grep -q '^# customs-test' "$hba"; then
		log "trusting loopback connections in $hba"
		# Prepended so these lines win over the default scram-sha-256 ones.
		$SUDO sh -c "{ printf '%s\n' '# customs-test: trust loopback for the test suite' \
			'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust'; cat '$hba'; } > '$hba.new' && mv '$hba.new' '$hba'"
		$SUDO chown postgres:postgres "$hba"
	fi
	log "starting PostgreSQL $ver"
	$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start ||
		$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
	for _ in $(seq 1 50); do pg_answers && break; sleep 0.2; done
	pg_answers || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
fi
if ! psql -h 127.0.0.1 -U postgres -d test -Atqc 'select 1' >/dev/null 2>&1; then
	log "creating database test"
	createdb -h 127.0.0.1 -U postgres test
fi

# --- Go tools ---------------------------------------------------------------

# go_tool NAME MODULE@VERSION installs the main package MODULE at VERSION as
# $BIN/NAME unless the stamp says that exact version is there.
go_tool() {
	local name="$1" want="$2" stamp="$BIN/.$1.version"
	if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return
	fi
	log "go install $want"
	# Built outside the project's module so its go.mod plays no part, into a
	# private GOBIN and then moved, so a killed build never leaves a stamp
	# pointing at a half-written binary.
	local tmp
	tmp="$(mktemp -d "$BIN/.build.XXXXXX")"
	(cd / && GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "$want")
	mv -f "$tmp/$(basename "${want%@*}")" "$BIN/$name"
	rmdir "$tmp"
	echo "$want" >"$stamp"
}

go_tool crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
go_tool oras oras.land/oras/cmd/oras@v1.3.6
go_tool regctl github.com/regclient/regclient/cmd/regctl@v0.11.7
# The conformance suite is its own module without tags; the module proxy
# serves it by pseudo-version (a bare commit hash is refused). This is
# distribution-spec main of 2026-08-31, one commit after 967efdc: the only
# change is that the suite's HTTP client no longer asks for gzip.
go_tool conformance github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111
# The CNCF registry, run side by side with customs by the benchmarks.
go_tool registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2
# govulncheck, whose module-level findings on test binaries customs must
# cover (test/crosscheck), reading the same Go advisories laid out as its
# database.
go_tool govulncheck golang.org/x/vuln/cmd/govulncheck@v1.9.0
# syft, whose OS package set on the Debian image customs' inventory must
# equal (test/scancli), and which bench/scan runs side by side with
# `customs scan`.
go_tool syft github.com/anchore/syft/cmd/syft@v1.57.0

# --- Test images ------------------------------------------------------------

# Bump when the recipe below changes, so cached images are rebuilt.
DEBIAN_RECIPE="debian-bookworm v1: mmdebstrap --variant=minbase --skip=output/dev bookworm; ocilayout -tag bookworm"

# debian_mirror prints the Debian archive URL this machine's apt uses (so a
# local mirror or proxy is honoured), or deb.debian.org.
debian_mirror() {
	local m=""
	if [ -n "${CUSTOMS_TEST_DEBIAN_MIRROR:-}" ]; then
		echo "$CUSTOMS_TEST_DEBIAN_MIRROR"
		return
	fi
	m="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }')"
	if [ -z "$m" ]; then
		m="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) print $i; break } }' | head -1)"
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

debian_image() {
	local dest="$IMAGES/debian-bookworm"
	if [ -f "$dest/index.json" ] && [ "$(cat "$dest/customs-recipe" 2>/dev/null)" = "$DEBIAN_RECIPE" ]; then
		return
	fi
	local mirror mode
	mirror="$(debian_mirror)"
	# As root mmdebstrap needs no user namespaces; otherwise it uses them.
	mode=unshare
	if [ "$(id -u)" -eq 0 ]; then mode=root; fi
	log "building $dest from $mirror (mmdebstrap --mode=$mode, one to three minutes)"
	# Built in a temp dir next to the cache entry and renamed when complete,
	# so a killed run never leaves a half-built image behind.
	# (A global, so the EXIT trap still sees it if a step fails.)
	image_tmp="$(mktemp -d "$IMAGES/.debian-bookworm.XXXXXX")"
	trap 'rm -rf "$image_tmp"' EXIT
	mmdebstrap --quiet --variant=minbase --mode="$mode" --skip=output/dev \
		bookworm "$image_tmp/rootfs.tar" "$mirror"
	(cd "$ROOT" && go build -o "$image_tmp/ocilayout" ./test/tools/ocilayout)
	"$image_tmp/ocilayout" -rootfs "$image_tmp/rootfs.tar" -out "$image_tmp/layout" -tag bookworm \
		-comment "mmdebstrap --variant=minbase bookworm" >/dev/null
	echo "$DEBIAN_RECIPE" >"$image_tmp/layout/customs-recipe"
	rm -rf "$dest.old"
	if [ -e "$dest" ]; then mv "$dest" "$dest.old"; fi
	if ! mv -T "$image_tmp/layout" "$dest" 2>/dev/null; then
		# Another run finished the same image first; keep theirs.
		[ -f "$dest/index.json" ] || { log "could not install $dest"; exit 1; }
	fi
	rm -rf "$dest.old" "$image_tmp"
	trap - EXIT
}

debian_image

# --- Kubernetes ---------------------------------------------------------------

# etcd, kube-apiserver and kubectl for the admission tests (test/kube).
"$ROOT/scripts/kube-deps.sh"
