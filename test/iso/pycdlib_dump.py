"""Dumps an ISO image as pycdlib (python3-pycdlib) sees it, as JSON, for the round-trip tests.

Usage: /usr/bin/python3 pycdlib_dump.py IMAGE
Prints {"rr"|"joliet"|"iso": {"files": {path: sha256}, "dirs": [path]}} with paths relative
to the root; a name space the image lacks is null.
"""

import hashlib
import io
import json
import sys

import pycdlib


def dump(iso, facade_kind):
    out = {"files": {}, "dirs": []}
    for root, dirs, files in iso.walk(**{facade_kind: "/"}):
        base = root.strip("/")
        for d in dirs:
            out["dirs"].append(f"{base}/{d}" if base else d)
        for f in files:
            path = f"{base}/{f}" if base else f
            buf = io.BytesIO()
            iso.get_file_from_iso_fp(buf, **{facade_kind: "/" + path})
            out["files"][path] = hashlib.sha256(buf.getvalue()).hexdigest()
    return out


def main():
    iso = pycdlib.PyCdlib()
    iso.open(sys.argv[1])
    result = {
        "rr": dump(iso, "rr_path") if iso.has_rock_ridge() else None,
        "joliet": dump(iso, "joliet_path") if iso.has_joliet() else None,
        "iso": dump(iso, "iso_path"),
    }
    iso.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
