"""TCP with mutual TLS between party processes: configuration, certificates, links.

Configuration (TOML; ``load_config``)::

    timeout = 60            # seconds a party waits for a message before it stops
    connect_timeout = 60    # seconds to wait for peers at start-up (retried with backoff)
    max_frame = 4294967296  # bytes; a larger frame is refused

    [ca]
    cert = "certs/ca.pem"   # the certificate authority every party's certificate is checked against

    [parties.S0]            # S0, S1, S2, client, model-owner
    host = "127.0.0.1"
    port = 7100             # servers listen; the client and the model owner only connect
    cert = "certs/S0.pem"   # this party's certificate (common name = the party's name) ...
    key = "certs/S0.key"    # ... and its private key (read only by that party)

Relative paths are taken from the configuration file's folder.

Who connects: server j connects to every server i < j; the client and the
model owner connect to every server.  Both ends present certificates signed
by the configured CA (anything else fails the TLS handshake), and the
accepting end checks that the certificate's common name is the party the
peer says it is.

Frames: a header (magic ``SP``, tag length, sequence number, payload
length), the step's tag, the payload.  The receiver knows the tag, the
sequence number and the size it expects (shapes are public), so a frame
from another step, out of order, truncated or oversized is an error naming
the peer and the step (``party.check_frame``).  A party that does not
hear from a peer within ``timeout`` seconds, or whose connection drops,
stops with an error that says so.

Each party runs one asyncio event loop; ``exchange`` in ``party.PartyChannel``
queues its sends and then runs the loop until its receives arrive, so two
parties sending each other large messages in one round never block on each
other.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .comm import PARTY_NAMES
from .party import LinkError, check_frame

import tomllib

HEADER = struct.Struct("!2sHQQ")         # magic, tag length, sequence number, payload length
MAGIC = b"SP"
ABORT = "abort"                          # a party that stops tells the others why
PARTY_IDS = {name: i for i, name in enumerate(PARTY_NAMES)}


class ConfigError(ValueError):
    """A cluster configuration the runtime cannot use; names the file and the field."""


@dataclass(frozen=True)
class PartyAddress:
    id: int
    host: str
    port: int
    cert: Path
    key: Path

    @property
    def name(self) -> str:
        return PARTY_NAMES[self.id]


@dataclass(frozen=True)
class ClusterConfig:
    path: Path
    ca: Path
    parties: dict            # id -> PartyAddress
    timeout: float = 60.0
    connect_timeout: float = 60.0
    max_frame: int = 1 << 32

    def peers_of(self, me: int) -> list:
        """The parties ``me`` exchanges messages with: servers with everyone listed,
        the client and the model owner with the servers."""
        servers = [i for i in (0, 1, 2) if i in self.parties]
        if me in (0, 1, 2):
            return [p for p in self.parties if p != me]
        return servers


def load_config(path) -> ClusterConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the cluster configuration ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    base = path.parent

    def need(table: dict, key: str, where: str, kind=str):
        if key not in table:
            raise ConfigError(f"{path}: {where}: field {key!r} is missing")
        v = table[key]
        if not isinstance(v, kind) or isinstance(v, bool):
            raise ConfigError(f"{path}: {where}.{key}: expected {kind.__name__}, got {v!r}")
        return v

    ca = base / need(need(raw, "ca", "top level", dict), "cert", "[ca]")
    parties = {}
    for name, table in need(raw, "parties", "top level", dict).items():
        if name not in PARTY_IDS:
            raise ConfigError(f"{path}: [parties.{name}]: unknown party (expected one of {', '.join(PARTY_NAMES)})")
        where = f"[parties.{name}]"
        port = need(table, "port", where, int) if PARTY_IDS[name] < 3 else int(table.get("port", 0))
        if PARTY_IDS[name] < 3 and not 0 < port < 65536:
            raise ConfigError(f"{path}: {where}.port: {port} is not a TCP port")
        parties[PARTY_IDS[name]] = PartyAddress(PARTY_IDS[name], str(table.get("host", "127.0.0.1")), port,
                                                base / need(table, "cert", where), base / need(table, "key", where))
    missing = [PARTY_NAMES[i] for i in (0, 1, 2) if i not in parties]
    if missing:
        raise ConfigError(f"{path}: [parties]: servers {', '.join(missing)} are missing")
    timeouts = {k: float(raw.get(k, d)) for k, d in (("timeout", 60.0), ("connect_timeout", 60.0))}
    for k, v in timeouts.items():
        if v <= 0:
            raise ConfigError(f"{path}: {k}: must be positive, got {v}")
    return ClusterConfig(path, ca, parties, max_frame=int(raw.get("max_frame", 1 << 32)), **timeouts)


# ----------------------------------------------------------------------------
# certificates (for ``secptune local-cluster`` and tests)

def make_certificates(folder, names=PARTY_NAMES, ca_name: str = "secptune local CA") -> dict:
    """A fresh CA and one certificate per party (common name = the party's name, valid
    for 127.0.0.1 and localhost), as PEM files in ``folder``; returns {name: (cert, key)}
    and 'ca': (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def write_key(k, p: Path):
        p.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        os.chmod(p, 0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_subject).issuer_name(ca_subject)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .sign(ca_key, hashes.SHA256()))
    out = {"ca": (folder / "ca.pem", folder / "ca.key")}
    out["ca"][0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_key(ca_key, out["ca"][1])
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        out[name] = (folder / f"{name}.pem", folder / f"{name}.key")
        out[name][0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key, out[name][1])
    return out


def write_local_config(folder, base_port: int, timeout: float = 60.0, names=PARTY_NAMES[:4]) -> Path:
    """Certificates and a configuration for a cluster on loopback (by default the three
    servers and the client; add "model-owner" to ``names`` for private weights, and the
    servers then wait for the model owner too); returns the config path."""
    folder = Path(folder)
    make_certificates(folder / "certs", names)
    lines = [f"timeout = {timeout}", "connect_timeout = 60", "", "[ca]", 'cert = "certs/ca.pem"', ""]
    for i, name in enumerate(names):
        lines += [f"[parties.{name}]", 'host = "127.0.0.1"']
        if PARTY_IDS[name] < 3:
            lines.append(f"port = {base_port + PARTY_IDS[name]}")
        lines += [f'cert = "certs/{name}.pem"', f'key = "certs/{name}.key"', ""]
    path = folder / "parties.toml"
    path.write_text("\n".join(lines))
    return path


# ----------------------------------------------------------------------------
# links

def _ssl_context(cfg: ClusterConfig, me: int, server: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    addr = cfg.parties[me]
    try:
        ctx.load_cert_chain(addr.cert, addr.key)
        ctx.load_verify_locations(cfg.ca)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"{cfg.path}: {addr.name}: cannot load its certificate {addr.cert}, key {addr.key} "
                          f"or the CA {cfg.ca} ({e})") from None
    ctx.verify_mode = ssl.CERT_REQUIRED       # mutual: the accepting side asks for the peer's certificate too
    ctx.check_hostname = False                # identities are party names, checked on the certificate below
    return ctx


def _common_name(writer) -> str | None:
    cert = writer.get_extra_info("peercert") or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


class TlsLink:
    """One authenticated connection to a peer, used from the party's event loop."""

    def __init__(self, net: "Network", peer: int, reader, writer):
        self.net, self.peer = net, peer
        self.reader, self.writer = reader, writer
        self.sent_seq = self.recv_seq = 0
        self.bytes_sent = self.bytes_received = 0      # payload bytes (what the engine counts)
        self.wire_sent = 0                              # frames: headers, tags and payloads

    def send(self, tag: str, payload: np.ndarray) -> None:
        data = memoryview(np.ascontiguousarray(payload)).cast("B")
        t = tag.encode()
        self.writer.write(HEADER.pack(MAGIC, len(t), self.sent_seq, data.nbytes) + t)
        self.writer.write(data)
        self.sent_seq += 1
        self.bytes_sent += data.nbytes
        self.wire_sent += HEADER.size + len(t) + data.nbytes

    def recv(self, tag: str, like: np.ndarray) -> np.ndarray:
        return self.net.run(self._recv(tag, like), f"message from {PARTY_NAMES[self.peer]} at step {tag!r}")

    async def last_words(self, wait: float = 1.0) -> str | None:
        """The reason in an abort frame the peer sent before its connection went, if one
        is among the frames still buffered (the others are skipped: the run is over)."""
        try:
            while True:
                magic, tlen, _, n = HEADER.unpack(await asyncio.wait_for(self.reader.readexactly(HEADER.size), wait))
                if magic != MAGIC or n > self.net.cfg.max_frame:
                    return None
                tag = (await asyncio.wait_for(self.reader.readexactly(tlen), wait)).decode("utf-8", "replace")
                data = await asyncio.wait_for(self.reader.readexactly(n), wait)
                if tag == ABORT:
                    return data.decode("utf-8", "replace")
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ssl.SSLError):
            return None

    async def _recv(self, tag: str, like: np.ndarray) -> np.ndarray:
        where = f"{PARTY_NAMES[self.net.me]}: message from {PARTY_NAMES[self.peer]} at step {tag!r}"
        try:
            magic, tlen, seq, n = HEADER.unpack(await self.reader.readexactly(HEADER.size))
            if magic != MAGIC:
                raise LinkError(f"{where}: not a secptune frame (garbled or foreign data)")
            if n > self.net.cfg.max_frame:
                raise LinkError(f"{where}: frame of {n} bytes exceeds max_frame {self.net.cfg.max_frame}")
            got_tag = (await self.reader.readexactly(tlen)).decode("utf-8", "replace")
            if got_tag == ABORT:
                reason = (await self.reader.readexactly(n)).decode("utf-8", "replace")
                raise LinkError(f"{where}: {PARTY_NAMES[self.peer]} stopped: {reason}")
            check_frame(self.net.me, self.peer, tag, self.recv_seq, like.nbytes, got_tag, seq, n)
            data = await self.reader.readexactly(n)
        except asyncio.IncompleteReadError:
            raise LinkError(f"{where}: the connection closed (the peer stopped or died)") from None
        except (ConnectionError, ssl.SSLError) as e:
            raise LinkError(f"{where}: the connection failed ({e})") from None
        self.recv_seq += 1
        self.bytes_received += n
        return np.frombuffer(data, dtype=like.dtype).reshape(like.shape).copy()


class Network:
    """A party's connections to its peers and the event loop that drives them."""

    def __init__(self, me: int, cfg: ClusterConfig):
        if me not in cfg.parties:
            raise ConfigError(f"{cfg.path}: no [parties.{PARTY_NAMES[me]}] section")
        self.me, self.cfg = me, cfg
        self.loop = asyncio.new_event_loop()
        self.links: dict = {}
        self._server = None

    def run(self, coro, what: str = "", timeout: float | None = None):
        timeout = self.cfg.timeout if timeout is None else timeout
        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))
        except asyncio.TimeoutError:
            raise LinkError(f"{PARTY_NAMES[self.me]}: no {what or 'progress'} within {timeout} s "
                            f"(a peer stopped, died or is stuck)") from None

    def flush(self) -> None:
        """Wait until what was written has left (the kernel's buffers take the rest)."""
        async def drain():
            for peer, link in self.links.items():
                try:
                    await link.writer.drain()
                except (ConnectionError, ssl.SSLError) as e:
                    why = await link.last_words()
                    raise LinkError(f"{PARTY_NAMES[self.me]}: the connection to {PARTY_NAMES[peer]} failed "
                                    f"({e or type(e).__name__}: the peer stopped or died)"
                                    + (f": {PARTY_NAMES[peer]} stopped: {why}" if why else "")) from None
        self.run(drain(), "flush")

    def connect(self) -> dict:
        """Open the links to every peer (retrying while they come up); returns {peer: TlsLink}."""
        peers = self.cfg.peers_of(self.me)
        self.run(self._connect(peers), "connection from every peer", timeout=self.cfg.connect_timeout)
        return self.links

    async def _connect(self, peers):
        accept = [p for p in peers if self.me in (0, 1, 2) and p > self.me]
        dial = [p for p in peers if p not in accept]
        arrived = asyncio.Event()
        if accept:
            addr = self.cfg.parties[self.me]

            async def on_connect(reader, writer):
                # a peer whose certificate the CA did not sign never gets here: the TLS
                # handshake fails (asyncio drops it quietly; the peer gets the error)
                try:
                    claimed = int.from_bytes(await asyncio.wait_for(reader.readexactly(1), 10), "big")
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ssl.SSLError):
                    writer.close()
                    return
                cn = _common_name(writer)
                if claimed not in accept or cn != PARTY_NAMES[claimed] or claimed in self.links:
                    print(f"{PARTY_NAMES[self.me]}: refused a peer claiming to be "
                          f"{PARTY_NAMES[claimed] if claimed < len(PARTY_NAMES) else claimed} "
                          f"with certificate {cn!r}", file=sys.stderr)
                    writer.close()
                    return
                writer.write(b"\x01")                  # accepted
                self.links[claimed] = TlsLink(self, claimed, reader, writer)
                if all(p in self.links for p in accept):
                    arrived.set()

            self._server = await asyncio.start_server(on_connect, addr.host, addr.port, limit=1 << 30,
                                                      ssl=_ssl_context(self.cfg, self.me, True))
        ctx = _ssl_context(self.cfg, self.me, False)
        for p in dial:
            peer = self.cfg.parties[p]
            delay = 0.05
            while True:
                try:
                    reader, writer = await asyncio.open_connection(peer.host, peer.port, ssl=ctx, limit=1 << 30)
                    break
                except (ConnectionRefusedError, OSError) as e:
                    if isinstance(e, ssl.SSLError):
                        raise LinkError(f"{PARTY_NAMES[self.me]}: TLS handshake with {peer.name} at "
                                        f"{peer.host}:{peer.port} failed ({e})") from None
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, 1.0)
            if _common_name(writer) != peer.name:
                writer.close()
                raise LinkError(f"{PARTY_NAMES[self.me]}: the party at {peer.host}:{peer.port} presented "
                                f"certificate {_common_name(writer)!r}, expected {peer.name!r}")
            writer.write(bytes([self.me]))
            try:       # the acceptor checks our certificate and name, then answers one byte
                await asyncio.wait_for(reader.readexactly(1), self.cfg.connect_timeout)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.TimeoutError) as e:
                writer.close()
                raise LinkError(f"{PARTY_NAMES[self.me]}: {peer.name} at {peer.host}:{peer.port} refused the "
                                f"connection ({type(e).__name__}{': ' + str(e) if str(e) else ''}; is this "
                                f"party's certificate signed by the cluster's CA?)") from None
            self.links[p] = TlsLink(self, p, reader, writer)
        if accept:
            await arrived.wait()

    def agree_keys(self) -> dict:
        """Keystream keys for the streams this party holds, agreed over the links: the
        pairwise component streams from their lower-numbered holder, the common
        stream from S0, the party's own from the OS.  Never sent in clear."""
        from .party import PartyChannel

        me = self.me
        keys = {}
        chan = PartyChannel(me, self.links)
        fresh = {f"component/{j}": os.urandom(16) for j in range(3)} | {"common": os.urandom(16)}
        # component j is held by servers j and j - 1; the lower id of the two deals its key
        msgs = []
        from .comm import Message

        for j in range(3):
            a, b = sorted((j, (j - 1) % 3))
            msgs.append(Message(a, b, np.frombuffer(fresh[f"component/{j}"], np.uint8) if me == a
                                else np.zeros(16, np.uint8)))
        msgs += [Message(0, s, np.frombuffer(fresh["common"], np.uint8) if me == 0 else np.zeros(16, np.uint8))
                 for s in (1, 2)]
        if me < 3:
            got = chan.exchange(msgs, "keys")
            for j in range(3):
                if me in (j, (j - 1) % 3):
                    keys[f"component/{j}"] = got[j].tobytes()
            keys["common"] = fresh["common"] if me == 0 else got[3 + (me - 1)].tobytes()
            keys[f"own/{me}"] = os.urandom(16)
        else:
            keys[("client", "model-owner")[me - 3]] = os.urandom(16)
        return keys

    def finish(self) -> None:
        """A goodbye to every peer and theirs in return, so nobody closes a connection
        another party still drains into."""
        bye = np.zeros(1, np.uint8)
        for link in self.links.values():
            link.send("bye", bye)
        for link in self.links.values():     # receiving runs the loop, which sends ours
            link.recv("bye", bye)

    def abort(self, reason: str) -> None:
        """Best effort: tell every peer why this party stops, so they stop with the cause."""
        data = np.frombuffer(reason.encode()[:4096], np.uint8)
        for link in self.links.values():
            try:
                t = ABORT.encode()
                link.writer.write(HEADER.pack(MAGIC, len(t), link.sent_seq, data.size) + t + data.tobytes())
            except Exception:       # the connection may be gone already
                pass

        async def drain():
            for link in self.links.values():
                try:
                    await asyncio.wait_for(link.writer.drain(), 2)
                except Exception:
                    pass
        try:
            self.loop.run_until_complete(drain())
        except Exception:
            pass

    def close(self) -> None:
        for link in self.links.values():
            link.writer.close()
        if self._server is not None:
            self._server.close()
        try:
            self.loop.run_until_complete(asyncio.sleep(0))
        finally:
            self.loop.close()
