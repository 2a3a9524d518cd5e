#!/usr/bin/env bash
# gen-pki.sh DIR: the test cluster's PKI (openssl, ~10 s): a CA, the apiserver
# serving certificate (127.0.0.1/localhost), the apiserver->kubelet client
# certificate (O=system:masters), the ServiceAccount key pair, static tokens for
# test-admin (system:masters), system:node:127.0.0.1 (system:nodes),
# system:kube-scheduler and system:kube-controller-manager, and one kubeconfig
# per component. Test use only: 30-day certificates, keys in plain files.
set -euo pipefail
D=$1
mkdir -p "$D"
D=$(cd "$D" && pwd)
cd "$D"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=clawbox-test-ca" 2>/dev/null
sign() { # name subject extensions
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 30 \
    -extfile <(printf '%s' "$3") 2>/dev/null
  rm -f "$1.csr"
}
sign api "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
sign kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
tok() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
A=$(tok) K=$(tok) S=$(tok) C=$(tok)
cat > tokens.csv <<T
$A,test-admin,test-admin,system:masters
$K,system:node:127.0.0.1,system:node:127.0.0.1,system:nodes
$S,system:kube-scheduler,system:kube-scheduler
$C,system:kube-controller-manager,system:kube-controller-manager
T
kc() {
  cat > "$1.kubeconfig" <<Y
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443", certificate-authority: $D/ca.crt}}]
users: [{name: $1, user: {token: $2}}]
contexts: [{name: test, context: {cluster: test, user: $1}}]
current-context: test
Y
}
kc admin "$A"
kc kubelet "$K"
kc scheduler "$S"
kc controller-manager "$C"
# Readable by the test user's tools; the private keys stay 0600.
chmod 0644 ca.crt api.crt kubelet-client.crt sa.pub admin.kubeconfig
