"""Certificates made at test time with `openssl req`: a private CA in a
directory, and leaves it signs (server or client certificates)."""

import subprocess


def run(*cmd, input=None, timeout=20):
    return subprocess.run(list(cmd), capture_output=True, text=True, input=input,
                          timeout=timeout)


class Pki:
    """A private CA in dir (ca.crt, ca.key; `prefix` names a second CA in the
    same directory), and leaves it signs."""

    def __init__(self, d, prefix="ca", cn="Surety Test CA"):
        self.d = d
        self.ca = prefix
        self.ca_crt = str(d / (prefix + ".crt"))
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(d / (prefix + ".key")), "-out", self.ca_crt, "-days", "30",
            "-subj", "/CN=" + cn)

    def leaf(self, name, sans, days=60, rsa=False):
        key, csr, crt = (self.d / (name + ext) for ext in (".key", ".csr", ".crt"))
        newkey = ["rsa:2048"] if rsa else ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        run("openssl", "req", "-newkey", *newkey, "-nodes", "-keyout", str(key), "-out",
            str(csr), "-subj", "/CN=" + sans[0])
        ext = self.d / (name + ".ext")
        ext.write_text("subjectAltName=" + ",".join("DNS:" + s for s in sans) + "\n")
        p = run("openssl", "x509", "-req", "-in", str(csr), "-CA", self.ca_crt,
                "-CAkey", str(self.d / (self.ca + ".key")), "-CAcreateserial", "-out", str(crt),
                "-days", str(days), "-extfile", str(ext))
        assert p.returncode == 0, p.stderr
        # the chain file: leaf, then the (private) root that issued it
        crt.write_text(crt.read_text() + (self.d / (self.ca + ".crt")).read_text())
        return str(crt), str(key)


