"""Encryption at rest for preserved content (TCO Art 6): AES-256-GCM, chunked, key rotation.

A blob is a header followed by chunks. Each chunk of plaintext (``chunk_size`` bytes, the
last one shorter or equal) is sealed with AES-256-GCM under a key derived for this blob alone
(HKDF-SHA256 of the configured key with a random salt), with

- nonce = an 8-byte random prefix + the 4-byte chunk index, and
- associated data = SHA-256(header + caller's AAD) + chunk index + final flag,

so a chunk moved, dropped, duplicated or cut off the end, a header edited, a blob swapped
for another, or a blob opened with the wrong AAD all fail the GCM tag. Only one chunk is in
memory at a time: a 200 MB video never is, whole. The SHA-256 and size of the plaintext are
returned in the ``BlobRef`` (stored by the caller) and checked again on every read.

Key rotation: every key has an id (``id:base64`` in the settings, or derived from the key).
Blobs record the id of the key that sealed them; old keys stay configured to read old blobs,
and ``reencrypt`` copies a blob under the current key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import os
import re
import struct
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cleanit.domain.errors import DomainError, InvalidInput, NotFound

KEY_BYTES = 32
KEY_SETTING = "CLEANIT_PRESERVATION_KEY"
OLD_KEYS_SETTING = "CLEANIT_PRESERVATION_OLD_KEYS"
DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB: large enough for throughput, small enough for memory
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB
MAX_CHUNK_SIZE = 64 << 20  # bounds what a damaged header can make a reader allocate

_MAGIC = b"CLEANITV"
_VERSION = 1
_TAG = 16
_SALT = 16
_PREFIX = 8
_MAX_CHUNKS = 1 << 32  # the chunk index fills the last 4 bytes of the 12-byte nonce
_INFO = b"cleanit preserved blob v1"
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_BLOB_ID = re.compile(r"[0-9a-f]{32}")
_GENERATE = "python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"


class BlobAltered(DomainError):
    """The GCM tag, size or SHA-256 of a preserved blob does not match: changed or wrong key."""

    code = "preserved-blob-altered"
    status = 500


class KeyUnavailable(DomainError):
    """The blob was sealed with a key id that is no longer configured."""

    code = "preservation-key-unavailable"
    status = 500


# --- keys -------------------------------------------------------------------------------


def _not_set(setting: str) -> InvalidInput:
    return InvalidInput(
        f"{setting} is not set: preserved content is encrypted at rest and needs a "
        f"32-byte key, base64-encoded; generate one with: {_GENERATE}",
        field=setting,
    )


def load_key(text: str | None, *, setting: str = KEY_SETTING) -> bytes:
    """Decode a base64 AES-256 key (exactly 32 bytes), with an error that says how to fix it."""
    if text is None or not text.strip():
        raise _not_set(setting)
    raw = text.strip()
    try:
        # urlsafe alphabets are accepted too: some secret stores hand keys out that way
        key = base64.b64decode(raw.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            f"{setting} is not valid base64 (expected 44 characters such as the output of "
            f"{_GENERATE})",
            field=setting,
        ) from None
    if len(key) != KEY_BYTES:
        raise InvalidInput(
            f"{setting} decodes to {len(key)} bytes; AES-256 needs exactly {KEY_BYTES} "
            f"(generate one with: {_GENERATE})",
            field=setting,
        )
    return key


def key_id_for(key: bytes) -> str:
    """A short id derived from the key, used when the setting gives none.

    A truncated hash of a random 256-bit key reveals nothing useful about it.
    """
    return "k" + hashlib.sha256(b"cleanit preservation key id\0" + key).hexdigest()[:12]


def parse_key_entry(text: str, *, setting: str = KEY_SETTING) -> tuple[str, bytes]:
    """``id:base64`` or bare ``base64`` (id derived). Base64 has no ``:``, so this is exact."""
    key_id, sep, encoded = text.strip().rpartition(":")
    if not sep:
        key = load_key(encoded, setting=setting)
        return key_id_for(key), key
    if not _KEY_ID.fullmatch(key_id):
        raise InvalidInput(
            f"{setting}: the key id {key_id!r} must be 1–32 letters, digits, '-' or '_'",
            field=setting,
        )
    return key_id, load_key(encoded, setting=setting)


def new_key_text(key_id: str | None = None) -> str:
    """A fresh key in the settings format, for the operator to store as a secret."""
    encoded = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    return f"{key_id}:{encoded}" if key_id else encoded


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current key (seals new blobs) and every key that may still open old ones."""

    current_id: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise InvalidInput(f"the current key {self.current_id!r} is not in the keyring")

    @classmethod
    def single(cls, key: bytes, key_id: str | None = None) -> Keyring:
        kid = key_id or key_id_for(key)
        return cls(kid, {kid: key})

    @classmethod
    def from_settings(cls, current: str | None, previous: str | None = None) -> Keyring:
        """``current`` from CLEANIT_PRESERVATION_KEY; ``previous`` from
        CLEANIT_PRESERVATION_OLD_KEYS, entries separated by commas or whitespace."""
        if current is None or not current.strip():
            raise _not_set(KEY_SETTING)
        current_id, key = parse_key_entry(current)
        keys = {current_id: key}
        for entry in re.split(r"[\s,]+", (previous or "").strip()):
            if not entry:
                continue
            kid, old = parse_key_entry(entry, setting=OLD_KEYS_SETTING)
            if keys.get(kid, old) != old:
                raise InvalidInput(
                    f"{OLD_KEYS_SETTING}: key id {kid!r} is given twice with different keys",
                    field=OLD_KEYS_SETTING,
                )
            keys[kid] = old
        return cls(current_id, keys)

    def key(self, key_id: str, *, blob_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyUnavailable(
                f"preserved blob {blob_id} was encrypted with key {key_id!r}, which is not "
                f"configured: add it to {OLD_KEYS_SETTING}"
            ) from None


# --- blobs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlobRef:
    """What the caller stores to find and check a blob again."""

    id: str  # 32 hex digits
    key_id: str
    sha256: str  # of the plaintext
    size: int  # of the plaintext


class Vault(Protocol):
    def put(self, plaintext: bytes, *, aad: bytes) -> BlobRef: ...

    def put_stream(self, pieces: Iterable[bytes], *, aad: bytes) -> BlobRef: ...

    def put_file(self, f: BinaryIO, *, aad: bytes) -> BlobRef: ...

    def get(self, ref: BlobRef, *, aad: bytes) -> bytes: ...

    def read(self, ref: BlobRef, *, aad: bytes) -> Iterator[bytes]: ...

    def delete(self, ref: BlobRef) -> None: ...

    def exists(self, ref: BlobRef) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Header:
    key_id: str
    blob_id: bytes
    salt: bytes
    prefix: bytes
    chunk_size: int

    def pack(self) -> bytes:
        kid = self.key_id.encode("ascii")
        return b"".join(
            (
                _MAGIC,
                struct.pack(">BB", _VERSION, len(kid)),
                kid,
                self.blob_id,
                self.salt,
                self.prefix,
                struct.pack(">I", self.chunk_size),
            )
        )


def _read_header(f: BinaryIO, blob_id: str) -> tuple[_Header, bytes]:
    def altered(why: str) -> BlobAltered:
        return BlobAltered(f"preserved blob {blob_id} was altered or the key is wrong ({why})")

    fixed = f.read(len(_MAGIC) + 2)
    if len(fixed) != len(_MAGIC) + 2 or fixed[: len(_MAGIC)] != _MAGIC:
        raise altered("not a cleanit vault blob")
    version, kid_len = struct.unpack(">BB", fixed[len(_MAGIC) :])
    if version != _VERSION:
        raise altered(f"unknown format version {version}")
    rest = f.read(kid_len + 16 + _SALT + _PREFIX + 4)
    if len(rest) != kid_len + 16 + _SALT + _PREFIX + 4:
        raise altered("header cut short")
    try:
        key_id = rest[:kid_len].decode("ascii")
    except UnicodeDecodeError:
        raise altered("damaged key id") from None
    pos = kid_len
    header = _Header(
        key_id=key_id,
        blob_id=rest[pos : pos + 16],
        salt=rest[pos + 16 : pos + 16 + _SALT],
        prefix=rest[pos + 16 + _SALT : pos + 16 + _SALT + _PREFIX],
        chunk_size=struct.unpack(">I", rest[-4:])[0],
    )
    if not 1 <= header.chunk_size <= MAX_CHUNK_SIZE:
        raise altered(f"impossible chunk size {header.chunk_size}")
    return header, fixed + rest


def _blocks(chunks: Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """Regroup arbitrary pieces into ``size``-byte blocks, flagging the last one.

    A full block is held back until more data arrives, because only then is it known not to
    be the last. Empty input gives one empty final block, so every blob has a final chunk.
    """
    held: bytes | None = None
    buf = bytearray()
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            if held is not None:
                yield held, False
                held = None
            take = size - len(buf)
            buf += view[:take]
            view = view[take:]
            if len(buf) == size:
                held = bytes(buf)
                buf.clear()
    yield (held, True) if held is not None else (bytes(buf), True)


def _file_pieces(f: BinaryIO, size: int) -> Iterator[bytes]:
    while piece := f.read(size):
        yield piece


def _gone(ref: BlobRef) -> NotFound:
    return NotFound(f"preserved blob {ref.id} does not exist (deleted at expiry?)")


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is; not possible on every OS.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FileVault:
    """Blobs under ``directory/<2 hex>/<32 hex>.bin``, each written atomically."""

    def __init__(
        self,
        directory: Path,
        keyring: Keyring,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise InvalidInput(f"chunk_size must be 1..{MAX_CHUNK_SIZE} bytes")
        if max_bytes // chunk_size >= _MAX_CHUNKS:
            raise InvalidInput("max_bytes needs more chunks than a nonce can count")
        self.directory = directory
        self.keyring = keyring
        self.chunk_size = chunk_size
        self.max_bytes = max_bytes

    def path_of(self, ref: BlobRef) -> Path:
        # The id comes back from the database: never let it name a path outside the vault.
        if not _BLOB_ID.fullmatch(ref.id):
            raise InvalidInput(f"{ref.id!r} is not a preserved blob id", field="id")
        return self.directory / ref.id[:2] / f"{ref.id}.bin"

    # writing

    def put(self, plaintext: bytes, *, aad: bytes) -> BlobRef:
        return self.put_stream([plaintext], aad=aad)

    def put_file(self, f: BinaryIO, *, aad: bytes) -> BlobRef:
        """Encrypt an open binary file (an upload, a download) from its current position."""
        return self.put_stream(_file_pieces(f, self.chunk_size), aad=aad)

    def put_stream(self, pieces: Iterable[bytes], *, aad: bytes) -> BlobRef:
        """Encrypt pieces of any size as they come; at most one chunk of plaintext is held."""
        blob = uuid.uuid4()
        key_id = self.keyring.current_id
        header = _Header(
            key_id, blob.bytes, os.urandom(_SALT), os.urandom(_PREFIX), self.chunk_size
        )
        ref_id = blob.hex
        final = self.directory / ref_id[:2] / f"{ref_id}.bin"
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{ref_id}.tmp")
        digest = hashlib.sha256()
        size = 0
        try:
            with tmp.open("xb") as f:
                packed = header.pack()
                f.write(packed)
                seal = _Sealer(self.keyring.keys[key_id], header, packed, aad)
                for index, (block, last) in enumerate(_blocks(pieces, self.chunk_size)):
                    size += len(block)
                    if size > self.max_bytes:
                        raise InvalidInput(
                            f"the content is larger than the preservation limit of "
                            f"{self.max_bytes} bytes",
                            field="content",
                        )
                    digest.update(block)
                    f.write(seal.seal(index, block, last))
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(final)  # atomic: a reader never sees half a blob
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        return BlobRef(id=ref_id, key_id=key_id, sha256=digest.hexdigest(), size=size)

    # reading

    def get(self, ref: BlobRef, *, aad: bytes) -> bytes:
        return b"".join(self.read(ref, aad=aad))

    def read(self, ref: BlobRef, *, aad: bytes) -> Iterator[bytes]:
        """Yield the plaintext chunk by chunk.

        Each chunk is authentic when yielded, but the whole (no chunk missing at the end, the
        SHA-256 in ``ref``) is confirmed only when the iterator finishes without raising:
        write to a temporary place and keep it only then.
        """
        path = self.path_of(ref)
        # Checked here, not in the generator, so a missing blob fails at the call.
        if not path.is_file():
            raise _gone(ref)
        return self._read(path, ref, aad)

    def _read(self, path: Path, ref: BlobRef, aad: bytes) -> Iterator[bytes]:
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise _gone(ref) from None  # deleted between the call and the first read
        with f:
            yield from self._read_from(f, ref, aad)

    def _read_from(self, f: BinaryIO, ref: BlobRef, aad: bytes) -> Iterator[bytes]:
        def altered(why: str) -> BlobAltered:
            return BlobAltered(f"preserved blob {ref.id} was altered or the key is wrong ({why})")

        header, packed = _read_header(f, ref.id)
        if header.blob_id.hex() != ref.id or header.key_id != ref.key_id:
            raise altered("the header does not belong to this blob")
        key = self.keyring.key(header.key_id, blob_id=ref.id)
        seal = _Sealer(key, header, packed, aad)
        step = header.chunk_size + _TAG
        digest = hashlib.sha256()
        size = 0
        index = 0
        current = f.read(step)
        while True:
            following = f.read(step)  # read ahead: only the last chunk is final
            last = not following
            try:
                block = seal.open(index, current, last)
            except InvalidTag:
                raise altered(f"chunk {index} fails authentication") from None
            size += len(block)
            if size > ref.size:
                raise altered("longer than recorded")
            digest.update(block)
            yield block
            if last:
                break
            current, index = following, index + 1
        if size != ref.size or digest.hexdigest() != ref.sha256:
            raise altered("size or SHA-256 differs from the record")

    def reencrypt(self, ref: BlobRef, *, aad: bytes) -> BlobRef:
        """A copy under the current key (rotation). The caller stores the new ref, then
        deletes the old blob."""
        return self.put_stream(self.read(ref, aad=aad), aad=aad)

    def delete(self, ref: BlobRef) -> None:
        """Remove the blob; deleting one already gone is not an error (expiry jobs retry).

        No overwrite first: on journaling and copy-on-write file systems and SSDs an
        overwrite lands in new blocks and does not erase the old ones. What makes the old
        blocks unreadable is the encryption; destroying a retired key erases every blob
        sealed with it.
        """
        self.path_of(ref).unlink(missing_ok=True)

    def exists(self, ref: BlobRef) -> bool:
        return self.path_of(ref).is_file()


class _Sealer:
    """AES-256-GCM with the per-blob key, nonce and associated data described above."""

    def __init__(self, key: bytes, header: _Header, packed_header: bytes, aad: bytes) -> None:
        subkey = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=header.salt, info=_INFO)
        self._aead = AESGCM(subkey.derive(key))
        self._prefix = header.prefix
        # Length-prefixed so that header/AAD boundaries cannot shift.
        self._context = hashlib.sha256(
            struct.pack(">Q", len(packed_header))
            + packed_header
            + struct.pack(">Q", len(aad))
            + aad
        ).digest()

    def _parts(self, index: int, last: bool) -> tuple[bytes, bytes]:
        nonce = self._prefix + struct.pack(">I", index)
        return nonce, self._context + struct.pack(">QB", index, last)

    def seal(self, index: int, block: bytes, last: bool) -> bytes:
        nonce, ad = self._parts(index, last)
        return self._aead.encrypt(nonce, block, ad)

    def open(self, index: int, sealed: bytes, last: bool) -> bytes:
        if index >= _MAX_CHUNKS:
            raise InvalidTag
        nonce, ad = self._parts(index, last)
        return self._aead.decrypt(nonce, sealed, ad)


class MemoryVault:
    """Blobs sealed the same way as ``FileVault``'s, kept in this process's memory under a
    random key: the default of a ``Context`` built by tests, which need no key or directory.
    The composition root always wires a ``FileVault``; nothing here survives a restart."""

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.keyring = Keyring.single(os.urandom(KEY_BYTES), "memory")
        self.chunk_size = chunk_size
        self._blobs: dict[str, bytes] = {}

    def _inner(self) -> FileVault:
        return FileVault(Path("/nonexistent"), self.keyring, chunk_size=self.chunk_size)

    def put(self, plaintext: bytes, *, aad: bytes) -> BlobRef:
        return self.put_stream([plaintext], aad=aad)

    def put_file(self, f: BinaryIO, *, aad: bytes) -> BlobRef:
        return self.put_stream(_file_pieces(f, self.chunk_size), aad=aad)

    def put_stream(self, pieces: Iterable[bytes], *, aad: bytes) -> BlobRef:
        blob = uuid.uuid4()
        header = _Header(
            self.keyring.current_id,
            blob.bytes,
            os.urandom(_SALT),
            os.urandom(_PREFIX),
            self.chunk_size,
        )
        packed = header.pack()
        seal = _Sealer(self.keyring.keys[header.key_id], header, packed, aad)
        out, digest, size = [packed], hashlib.sha256(), 0
        for index, (block, last) in enumerate(_blocks(pieces, self.chunk_size)):
            size += len(block)
            digest.update(block)
            out.append(seal.seal(index, block, last))
        self._blobs[blob.hex] = b"".join(out)
        return BlobRef(blob.hex, header.key_id, digest.hexdigest(), size)

    def get(self, ref: BlobRef, *, aad: bytes) -> bytes:
        return b"".join(self.read(ref, aad=aad))

    def read(self, ref: BlobRef, *, aad: bytes) -> Iterator[bytes]:
        sealed = self._blobs.get(ref.id)
        if sealed is None:
            raise _gone(ref)
        # The file reader's checks, on a file held in memory.
        return self._inner()._read_from(io.BytesIO(sealed), ref, aad)

    def delete(self, ref: BlobRef) -> None:
        self._blobs.pop(ref.id, None)

    def exists(self, ref: BlobRef) -> bool:
        return ref.id in self._blobs
