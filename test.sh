#!/usr/bin/env bash
# Runs every check and test of ringdns. On a fresh Debian machine it first installs the
# tools the tests use (kdig, dig and delv, dnssec-keygen and dnssec-signzone, Knot's
# kzonesign and keymgr, ldns-verify-zone, dnsviz (with BIND's named), openssl,
# unbound as a DoT upstream, Knot DNS as a hidden primary, prometheus and promtool
# for the metrics, dnsperf and iproute2 (network namespaces) for rate limiting, lego and
# certbot (with its rfc2136 plugin) as ACME clients of update, and pebble, the test ACME CA of ../shared/acme-testbed, which each ACME test
# starts on its own ports) with apt-get.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v kdig >/dev/null || missing+=(knot-dnsutils)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
command -v dnssec-signzone >/dev/null || missing+=(bind9-utils)
command -v kzonesign >/dev/null || missing+=(knot-dnssecutils)
command -v ldns-verify-zone >/dev/null || missing+=(ldnsutils)
command -v dnsviz >/dev/null || missing+=(dnsviz)
# dnsviz probe needs BIND's named for its delegation stub (it starts its own).
[ -x /usr/sbin/named ] || missing+=(bind9)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
[ -x /usr/bin/pebble ] || missing+=(pebble)
command -v faketime >/dev/null || missing+=(faketime)
[ -x /usr/sbin/unbound ] || missing+=(unbound)
[ -x /usr/sbin/knotd ] || missing+=(knot)
command -v promtool >/dev/null || missing+=(prometheus)
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v ip >/dev/null || missing+=(iproute2)
command -v systemd-analyze >/dev/null || missing+=(systemd)
# ACME clients that publish their DNS-01 values by RFC 2136 (update).
command -v lego >/dev/null || missing+=(lego)
command -v certbot >/dev/null || missing+=(certbot)
[ -d /usr/lib/python3/dist-packages/certbot_dns_rfc2136 ] || missing+=(python3-certbot-dns-rfc2136)
# The acme-dns client (certbot-dns-acmedns from PyPI) lives in a virtualenv the tests make
# (tests/clients/certbot-acmedns.sh).
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "test.sh: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    # Installing bind9 must not start a named service on port 53 of this machine: a
    # policy-rc.d that says no, for the length of the install, when there is none.
    policy=""
    if [[ " ${missing[*]} " == *" bind9 "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    [ -z "$policy" ] || $sudo rm -f "$policy"
fi

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    # Black-box tests mostly wait on timeouts: run many at once.
    cargo nextest run --no-fail-fast --test-threads 8
    cargo test --doc
else
    cargo test --no-fail-fast -- --test-threads 8
fi
