"""The organization's signing key: Ed25519, generated once, kept in the data directory.

Evidence bundles are signed with it, so an inspector who holds the public part (handed over once,
`kuzet compliance key`) can check that a bundle came from this post and was not changed since.
The private key never leaves `$KUZET_HOME/keys/` (directory 0700, file 0600).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = "organization-ed25519.pem"


def key_path(home: Path) -> Path:
    return home / "keys" / KEY_FILE


def load_or_create(home: Path) -> Ed25519PrivateKey:
    """The organization's key; made on first use. Never overwritten: a new key would orphan every
    bundle signed before."""
    path = key_path(home)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A short form to read over the phone: base64 of the raw 32-byte public key."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public(data: bytes) -> Ed25519PublicKey:
    """A public key as PEM, or as the base64 raw form `fingerprint` prints."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
    else:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key
