#!/usr/bin/env bash
# Makes (once) a virtualenv with certbot and the certbot-dns-acmedns plugin from PyPI, the
# acme-dns client the acme_dns tests run, and prints the path of its certbot.
#
# certbot-dns-acmedns 0.1.0 is a zope-based plugin: it needs certbot 1.x, which needs the
# pyOpenSSL/cryptography of its time, and pkg_resources (setuptools < 60) that finds its
# zope requirements by their dotted names, which pip >= 24 and the newer zope wheels
# write with underscores: hence every pin below. (certbot-acme-dns 0.3 refuses a CA
# without CAA identities, as the test CA is; lego's acme-dns provider is not in Debian's
# lego 4.9.1.)
set -euo pipefail
venv="${1:?usage: certbot-acmedns.sh VENV_DIR}"
mkdir -p "$(dirname "$venv")"
# Test binaries run in parallel: one makes the virtualenv, the others wait for it.
exec 9>"$venv.lock"
flock 9
if [ ! -x "$venv/bin/certbot" ] || ! "$venv/bin/certbot" plugins 2>/dev/null | grep -q dns-acmedns; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q "pip<24" >&2
    "$venv/bin/pip" install -q --no-cache-dir "setuptools==59.8.0" "certbot==1.32.0" "acme==1.32.0" \
        "josepy==1.15.0" "pyOpenSSL==23.3.0" "cryptography==41.0.7" "zope.interface==6.0" \
        "zope.hookable==6.0" "zope.component==5.1.0" "zope.event==4.6" "pyacmedns==0.4" \
        "certbot-dns-acmedns==0.1.0" >&2
    "$venv/bin/certbot" plugins 2>/dev/null | grep -q dns-acmedns
fi
echo "$venv/bin/certbot"
