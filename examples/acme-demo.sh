#!/usr/bin/env bash
# The whole ACME flow, offline: a test CA (pebble, from ../shared/acme-testbed) on loopback,
# ringdns answering the DNS-01 challenge itself, and kdig checking the DoT certificate
# against the test CA's root. Run from the repository root:  examples/acme-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
testbed=../shared/acme-testbed
work=$(mktemp -d /tmp/ringdns-acme-demo.XXXXXX)

# 1. The test CA. It sends its DNS-01 queries to 127.0.0.1:8053.
eval "$(bash "$testbed/start-pebble.sh")"
trap 'kill "$pid" 2>/dev/null || true; bash "$testbed/stop-pebble.sh" >/dev/null 2>&1 || true' EXIT

# 2. ringdns: plain DNS for demo.test on 8053 (where the CA asks), DoT on 8853 with a
#    certificate for ns1.demo.test that ringdns orders itself.
bin=${RINGDNS_BIN:-target/release/ringdns}
[ -x "$bin" ] || cargo build --release
cat >"$work/Corefile" <<COREFILE
tls://demo.test:8853 {
    bind 127.0.0.1
    tls acme {
        domain ns1.demo.test
        ca $ACME_DIRECTORY_URL
        cacert $ACME_HTTPS_CA_PEM
        certpath $work/certs
    }
    hosts {
        192.0.2.53 ns1.demo.test
    }
}

demo.test:8053 {
    bind 127.0.0.1
    hosts {
        192.0.2.53 ns1.demo.test
    }
}
COREFILE
"$bin" --conf "$work/Corefile" --shards 1 2>"$work/ringdns.log" &
pid=$!
echo "ringdns (pid $pid) is ordering a certificate; log: $work/ringdns.log" >&2
for _ in $(seq 1 60); do
    grep -q "certificate obtained" "$work/ringdns.log" && break
    sleep 0.5
done
grep "certificate obtained" "$work/ringdns.log" >&2

# 3. A DNS over TLS query that trusts only the test CA's root, for the name on the certificate.
kdig @127.0.0.1 -p 8853 +tls +tls-ca="$ACME_ISSUER_ROOT_PEM" +tls-hostname=ns1.demo.test ns1.demo.test A
echo "stored: $(find "$work/certs" -name chain.pem)" >&2
