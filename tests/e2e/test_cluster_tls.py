"""berthd's cluster client over TLS, against a real etcd (etcdtest.py)
that serves https:// and, mostly, wants client certificates
(--client-cert-auth). The certificates are made here, with the openssl
command, in a temporary directory:

    ca      the CA etcd and berthd trust
    ca2     another CA, trusted by no one
    server  etcd's: CN etcd, subjectAltName IP:127.0.0.1, serverAuth and
            clientAuth (etcd's own gateway presents it to etcd)
    other   etcd's, for another name: DNS:etcd.example, IP:127.0.0.2
    client  berthd's: CN berthd, clientAuth, from ca
    stray   berthd's, from ca2

What is checked: a node with the right CA and client certificate joins
(/v1/status, /v1/cluster/nodes, its record in etcd) and joins again over
fresh TLS connections after etcd is killed and restarted; a wrong CA, the
system's CAs, no client certificate, a client certificate from another
CA, a server certificate for another name and https:// to a plain etcd
each leave it disconnected, with last_error saying why; and each mistake
in the TLS flags stops berthd at start with exit 2 and one line.

Skipped (one line) without etcd (apt-get install etcd-server) or the
openssl command."""

import json
import os
import random
import shutil
import subprocess
import tempfile
import unittest

import berthtest
from berthtest import BerthTestCase, clean_env, main, wait_for
from etcdtest import TLS, EtcdMixin

# A join takes well under a second; a busy CI machine (or ASan) more.
TIMEOUT = 30

PKI = None          # the directory setUpModule fills


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   capture_output=True, timeout=60)


def _conf(name, cn, ext):
    """An openssl config of our own (none of the system's defaults)."""
    path = os.path.join(PKI, name + ".cnf")
    with open(path, "w") as f:
        f.write("[req]\ndistinguished_name = dn\nprompt = no\n"
                "[dn]\nCN = %s\n[ext]\n%s\n" % (cn, ext))
    return path


def _key_and_req(name, cnf, *x509):
    """A P-256 key in NAME.key and, with -x509, a self-signed
    certificate; else a request in NAME.csr."""
    out = name + (".crt" if x509 else ".csr")
    _openssl("req", "-new", "-nodes", *x509, "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", os.path.join(PKI, name + ".key"),
             "-out", os.path.join(PKI, out), "-days", "2", "-config", cnf,
             *(["-extensions", "ext"] if x509 else []))


def make_ca(name):
    cnf = _conf(name, "berth test " + name,
                "basicConstraints = critical, CA:TRUE\n"
                "keyUsage = critical, keyCertSign, cRLSign\n"
                "subjectKeyIdentifier = hash")
    _key_and_req(name, cnf, "-x509")


def make_leaf(name, cn, ca, usage, san=None):
    """NAME.crt and NAME.key for cn, signed by ca, for usage
    (serverAuth, clientAuth), with subjectAltName san if given."""
    ext = ("basicConstraints = CA:FALSE\n"
           "keyUsage = critical, digitalSignature\n"
           "extendedKeyUsage = %s\n" % usage)
    if san:
        ext += "subjectAltName = %s\n" % san
    cnf = _conf(name, cn, ext)
    _key_and_req(name, cnf)
    _openssl("x509", "-req", "-in", os.path.join(PKI, name + ".csr"),
             "-CA", os.path.join(PKI, ca + ".crt"),
             "-CAkey", os.path.join(PKI, ca + ".key"),
             "-set_serial", str(random.getrandbits(63)), "-days", "2",
             "-out", os.path.join(PKI, name + ".crt"),
             "-extfile", cnf, "-extensions", "ext")


def setUpModule():
    global PKI
    if shutil.which("openssl") is None:
        raise unittest.SkipTest("no openssl command (apt-get install "
                                "openssl): it makes the certificates")
    PKI = tempfile.mkdtemp(prefix="berth-tls-")
    make_ca("ca")
    make_ca("ca2")
    make_leaf("server", "etcd", "ca", "serverAuth, clientAuth",
              "IP:127.0.0.1")
    make_leaf("other", "etcd.example", "ca", "serverAuth, clientAuth",
              "DNS:etcd.example, IP:127.0.0.2")
    make_leaf("client", "berthd", "ca", "clientAuth")
    make_leaf("stray", "berthd", "ca2", "clientAuth")
    # The client key again, with a passphrase.
    _openssl("pkey", "-in", pem("client.key"), "-aes256",
             "-passout", "pass:secret", "-out", pem("secret.key"))


def tearDownModule():
    if PKI:
        shutil.rmtree(PKI, ignore_errors=True)


def pem(name):
    return os.path.join(PKI, name)


def tls_flags(ca="ca.crt", cert="client.crt", key="client.key"):
    """berthd's TLS flags for these files of the PKI (None: left out)."""
    out = []
    for flag, f in (("--cluster-cacert", ca), ("--cluster-cert", cert),
                    ("--cluster-key", key)):
        if f:
            out += [flag, pem(f)]
    return out


class ClusterTLSTest(EtcdMixin, BerthTestCase):

    def etcd_tls(self, cert="server", client_cert_auth=True,
                 check_hostname=True):
        """An etcd on https:// with cert, wanting certificates from ca
        with client_cert_auth; the harness presents client.crt."""
        return self.etcd(tls=TLS(
            pem(cert + ".crt"), pem(cert + ".key"), pem("ca.crt"),
            client_cert_auth=client_cert_auth, client_cert=pem("client.crt"),
            client_key=pem("client.key"), check_hostname=check_hostname))

    def node(self, url, flags, name="a"):
        return self.berthd("--cluster", url, "--advertise", "127.0.0.1",
                           "--node", name, *flags)

    def cluster(self, d):
        r = d.get("/v1/status")
        self.assertEqual(r.status, 200, r)
        return r.json["cluster"]

    def wait_connected(self, d, connected=True):
        return wait_for(lambda: (self.cluster(d)["connected"] == connected
                                 and self.cluster(d)),
                        TIMEOUT, "connected: %s" % connected)

    def wait_error(self, d, *words):
        """Wait for last_error (the node stays disconnected), and check
        that it and the log say each of words."""
        def failed():
            c = self.cluster(d)
            # Until its first try has failed, a node says "not joined yet";
            # a try may also fail before TLS has begun (a busy etcd): the
            # next one, after the backoff, says what TLS found.
            e = c["last_error"] or ""
            return c if all(w in e for w in words) else None
        st = wait_for(failed, TIMEOUT, "a last_error saying %r" % (words,))
        self.assertFalse(st["connected"], st)
        self.assertNotIn("\n", st["last_error"])
        for w in words:
            self.assertIn(w, st["last_error"])
        wait_for(lambda: st["last_error"] in d.logtext(), TIMEOUT,
                 "the log to say %r" % st["last_error"])
        # A node that never joined knows of itself only.
        self.assertEqual([n["node"] for n in
                          d.get("/v1/cluster/nodes").json["nodes"]],
                         [st["node"]])
        return st["last_error"]

    def nodes(self, d):
        r = d.get("/v1/cluster/nodes")
        self.assertEqual(r.status, 200, r)
        return sorted(n["node"] for n in r.json["nodes"])

    def test_joins_with_ca_and_client_cert(self):
        e = self.etcd_tls()
        self.assertTrue(e.client_url.startswith("https://127.0.0.1:"))
        a = self.node(e.client_url, tls_flags())
        st = self.wait_connected(a)
        self.assertEqual(st["endpoints"], [e.client_url])
        self.assertIsNone(st["last_error"])
        b = self.node(e.client_url, tls_flags(), name="b")
        self.wait_connected(b)
        wait_for(lambda: self.nodes(a) == ["a", "b"] == self.nodes(b),
                 TIMEOUT, "each node to see both")
        rec = json.loads(e.get_prefix("/berth/nodes/")[b"/berth/nodes/a"])
        self.assertEqual(rec["address"], "127.0.0.1")
        # Killed and restarted: the nodes join again, each request on a
        # new TLS connection with a new SSL object.
        e.kill()
        self.wait_connected(a, False)
        e.restart()
        self.wait_connected(a)
        self.wait_connected(b)
        wait_for(lambda: self.nodes(a) == ["a", "b"], TIMEOUT,
                 "a to see both again")

    def test_wrong_ca(self):
        e = self.etcd_tls()
        d = self.node(e.client_url, tls_flags(ca="ca2.crt"))
        self.wait_error(d, e.client_url, "TLS handshake failed",
                        "certificate verify failed",
                        "unable to get local issuer certificate")

    def test_system_cas_without_cacert(self):
        # No --cluster-cacert: the system's CAs, which know nothing of ca.
        e = self.etcd_tls()
        d = self.node(e.client_url, tls_flags(ca=None))
        self.wait_error(d, "certificate verify failed",
                        "unable to get local issuer certificate")

    # With TLS 1.3 the client's side of the handshake ends before etcd
    # checks its certificate: berthd reads etcd's alert ("etcd wants",
    # "etcd refused"), or a reset that came first ("does etcd want", "did
    # etcd refuse"). Either names the flags.

    def test_no_client_cert(self):
        e = self.etcd_tls()
        d = self.node(e.client_url, tls_flags(cert=None, key=None))
        self.wait_error(d, "TLS", "etcd want", "a client certificate",
                        "give --cluster-cert and --cluster-key")

    def test_client_cert_from_another_ca(self):
        e = self.etcd_tls()
        d = self.node(e.client_url, tls_flags(cert="stray.crt",
                                              key="stray.key"))
        self.wait_error(d, "TLS", "refuse", "berthd's client certificate",
                        "--cluster-cert")

    def test_server_cert_for_another_name(self):
        e = self.etcd_tls(cert="other", check_hostname=False)
        d = self.node(e.client_url, tls_flags())
        self.wait_error(d, "certificate verify failed",
                        "IP address mismatch",
                        "the certificate is not for 127.0.0.1")

    def test_https_to_plain_etcd(self):
        e = self.etcd()
        url = e.client_url.replace("http://", "https://")
        d = self.node(url, tls_flags())
        self.wait_error(d, url, "TLS handshake failed",
                        "is it http://, not https://?")


class ClusterTLSFlagsTest(BerthTestCase):
    """Mistakes in the TLS flags stop berthd at start: exit 2, one line."""

    def start(self, *flags, env=None, url="https://127.0.0.1:2379"):
        argv = [berthtest.BERTHD, "--db", ":memory:", "--listen",
                "127.0.0.1:0", "--advertise", "127.0.0.1", "--cluster",
                url] + list(flags)
        try:
            return subprocess.run(argv, env=clean_env(env),
                                  stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True,
                                  timeout=10 * berthtest.SLOWDOWN)
        except subprocess.TimeoutExpired:
            self.fail("berthd %s did not exit" % " ".join(argv))

    def assertRefused(self, res, *words):
        self.assertEqual(res.returncode, 2, res)
        lines = res.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, res.stderr)
        self.assertTrue(lines[0].startswith("berthd: "), res.stderr)
        for w in words:
            self.assertIn(w, lines[0])

    def test_cert_and_key_go_together(self):
        self.assertRefused(self.start(*tls_flags(key=None)),
                           "--cluster-cert and --cluster-key go together")
        self.assertRefused(self.start(*tls_flags(cert=None)),
                           "--cluster-cert and --cluster-key go together")
        self.assertRefused(
            self.start(env={"BERTH_CLUSTER_KEY": pem("client.key")}),
            "--cluster-cert and --cluster-key go together")

    def test_tls_files_need_https(self):
        self.assertRefused(self.start(*tls_flags(),
                                      url="http://127.0.0.1:2379"),
                           "need https:// endpoints")

    def test_no_mixed_schemes(self):
        self.assertRefused(
            self.start(url="https://127.0.0.1:2379,http://127.0.0.1:2380"),
            "mixes http:// and https://")

    def test_files_must_be_readable(self):
        missing = os.path.join(PKI, "missing.crt")
        self.assertRefused(self.start(*tls_flags(ca="missing.crt")),
                           "cannot read --cluster-cacert", missing,
                           "No such file or directory")
        self.assertRefused(self.start("--cluster-cacert", PKI),
                           "cannot read --cluster-cacert",
                           "not a regular file")
        self.assertRefused(self.start(*tls_flags(key="missing.key")),
                           "cannot read --cluster-key")
        if os.geteuid() != 0:      # root reads a mode 000 file
            locked = pem("locked.key")
            shutil.copy(pem("client.key"), locked)
            os.chmod(locked, 0)
            self.assertRefused(self.start(*tls_flags(key="locked.key")),
                               "cannot read --cluster-key",
                               "Permission denied")

    def test_files_must_hold_what_they_say(self):
        self.assertRefused(self.start(*tls_flags(ca="client.key")),
                           "--cluster-cacert", "no CA certificate")
        self.assertRefused(self.start(*tls_flags(cert="client.key")),
                           "--cluster-cert", "no certificate")
        self.assertRefused(self.start(*tls_flags(key="ca2.key")),
                           "is not the key of --cluster-cert")
        self.assertRefused(self.start(*tls_flags(key="secret.key")),
                           "--cluster-key", "no private key",
                           "without a passphrase")

    def test_good_flags_start(self):
        # The same flags that are refused above, right: berthd runs.
        d = self.berthd("--cluster", "https://127.0.0.1:9", "--advertise",
                        "127.0.0.1", *tls_flags())
        self.assertEqual(d.get("/v1/health").status, 200)


if __name__ == "__main__":
    main()
