"""A real OpenLDAP ``slapd`` for the sign-in tests: a temp ``slapd.conf``, ``slapadd`` of a small
directory (people, a service account), groups added through the running server (so the memberof
overlay fills ``memberOf``), plain ``ldap://`` and ``ldaps://`` on 127.0.0.1 with a throwaway CA.

Debian's ``slapd`` (``make test-deps`` installs it with ldap-utils) runs from the temp folder
without root or system configuration. Every wait is bounded; ``stop`` ends the process.
"""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from pathlib import Path

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SUFFIX = "dc=example,dc=org"
ROOT_DN, ROOT_PW = f"cn=admin,{SUFFIX}", "root-secret-1"
SERVICE_DN, SERVICE_PW = f"cn=reader,ou=services,{SUFFIX}", "reader-secret-1"
PEOPLE, GROUPS = f"ou=people,{SUFFIX}", f"ou=groups,{SUFFIX}"
USER_DN_TEMPLATE = "uid={username}," + PEOPLE
# name -> (password, groups under ou=groups); "teams" is a group outside the group base
USERS = {"dana": ("dana-pw-123", ["dcu-admins", "engineers"]), "erik": ("erik-pw-123", ["engineers"]),
         "fay": ("fay-pw-1234", []), "bob": ("bob-dir-pw-1", [])}
OUTSIDE_GROUP = f"cn=researchers,ou=teams,{SUFFIX}"  # erik is in it (memberOf only, outside the base)


def slapd_missing() -> str | None:
    """Why the LDAP tests cannot run here, or None."""
    for tool in (SLAPD, SLAPADD):
        if not Path(tool).is_file():
            return f"needs Debian's slapd and ldap-utils ({tool} missing; make test-deps installs them)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ldif() -> str:
    entries = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example"]
    for ou in ("people", "groups", "services", "teams"):
        entries.append(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}")
    entries.append(f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
                   f"cn: reader\nuserPassword: {SERVICE_PW}")
    for name, (password, _) in USERS.items():
        entries.append(f"dn: uid={name},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name.title()}\n"
                       f"sn: {name.title()}\nmail: {name}@example.org\nuserPassword: {password}")
    return "\n\n".join(entries) + "\n"


def _make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost: (ca, cert, key) PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dcu-chat test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class Slapd:
    """One slapd in ``folder``: ``start()``, ``stop()``, ``url``, ``ldaps_url``, ``ca_file``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.tls_port = _free_port(), _free_port()
        self.url, self.ldaps_url = f"ldap://127.0.0.1:{self.port}", f"ldaps://127.0.0.1:{self.tls_port}"
        self.proc: subprocess.Popen | None = None
        self.ca_file, cert, key = _make_certs(folder)
        (folder / "db").mkdir()
        self.conf = folder / "slapd.conf"
        self.conf.write_text("\n".join([
            *(f"include /etc/ldap/schema/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")),
            "modulepath /usr/lib/ldap", "moduleload back_mdb", "moduleload memberof",
            f"pidfile {folder}/slapd.pid", f"argsfile {folder}/slapd.args",
            f"TLSCACertificateFile {self.ca_file}", f"TLSCertificateFile {cert}", f"TLSCertificateKeyFile {key}",
            "database mdb", f'suffix "{SUFFIX}"', f'rootdn "{ROOT_DN}"', f"rootpw {ROOT_PW}",
            f"directory {folder}/db", "maxsize 10485760",
            "overlay memberof", "memberof-group-oc groupOfNames", "memberof-member-ad member",
            "memberof-memberof-ad memberOf", "memberof-refint true",
            "access to attrs=userPassword by self =xw by anonymous auth by * none",
            "access to * by users read by anonymous auth",
        ]) + "\n")
        ldif = folder / "base.ldif"
        ldif.write_text(_ldif())
        done = subprocess.run([SLAPADD, "-f", str(self.conf), "-l", str(ldif)], capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"slapadd failed: {done.stderr}")
        self.log_path = folder / "slapd.log"

    def start(self, timeout: float = 30) -> Slapd:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SLAPD, "-f", str(self.conf), "-h", f"{self.url}/ {self.ldaps_url}/",
                                      "-d", "0"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"slapd did not listen within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None

    def add_groups(self) -> None:
        """The groups, added through the server so that the memberof overlay writes memberOf."""
        from ldap3 import Connection, Server

        members: dict[str, list[str]] = {}
        for name, (_, groups) in USERS.items():
            for group in groups:
                members.setdefault(f"cn={group},{GROUPS}", []).append(f"uid={name},{PEOPLE}")
        members[OUTSIDE_GROUP] = [f"uid=erik,{PEOPLE}"]
        with Connection(Server(self.url, connect_timeout=5), ROOT_DN, ROOT_PW, auto_bind=True,
                        receive_timeout=10) as conn:
            for dn, member in members.items():
                if not conn.add(dn, ["groupOfNames"], {"cn": dn.split(",")[0][3:], "member": member}):
                    raise RuntimeError(f"cannot add {dn}: {conn.result}")
