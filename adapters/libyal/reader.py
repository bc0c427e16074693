#!/usr/bin/python3
"""Reads a disk image through libyal's Python bindings for qbc's libyal adapter.

  reader.py probe                     which bindings import (JSON list)
  reader.py sha256 FORMAT PATH [PASSFILE]   sha256 of the guest-visible bytes
  reader.py verify FORMAT PATH [PASSFILE]   stdin: JSON [[offset, length, pattern], ...];
                                      every byte of each range must equal pattern
                                      (pattern -1: read only)

Prints one JSON object on stdout. Failures print {"error": "..."} and exit 1.
PASSFILE holds the passphrase of an encrypted qcow image (libqcow's set_password).
Parents (qcow backing files, VHD/VHDX parents, VMDK parents) are opened with
the same library, relative to the child's directory, as the library needs them.
"""
import hashlib
import json
import os
import sys

CHUNK = 1 << 20
MAX_CHAIN = 16

LIBS = {
    'qcow': 'pyqcow', 'qcow2': 'pyqcow',
    'vmdk': 'pyvmdk',
    'vpc': 'pyvhdi', 'vhdx': 'pyvhdi',
}


def parent_name(lib, handle):
    for attr in ('backing_filename', 'parent_filename'):
        name = getattr(handle, attr, None)
        if name:
            return name
    return None


# the libraries keep a parent's handle without a Python reference: keep one here
_keep = []


def open_image(fmt, path, depth=0, password=None):
    if depth > MAX_CHAIN:
        raise RuntimeError('backing chain longer than %d images' % MAX_CHAIN)
    modname = LIBS.get(fmt)
    if modname is None:
        raise RuntimeError('no libyal library reads %s' % fmt)
    lib = __import__(modname)
    handle = lib.handle() if modname == 'pyvmdk' else lib.file()
    if password is not None:
        # before open: libqcow reads the key when it opens the file
        handle.set_password(password)
    handle.open(path)
    if modname == 'pyvmdk':
        handle.open_extent_data_files()
    parent = parent_name(lib, handle)
    if parent:
        ppath = parent if os.path.isabs(parent) else os.path.join(os.path.dirname(path), parent)
        parent_handle = open_image(fmt, ppath, depth + 1)
        _keep.append(parent_handle)
        handle.set_parent(parent_handle)
    return handle


def main(argv):
    if argv[1] == 'probe':
        have = []
        for mod in sorted(set(LIBS.values())):
            try:
                m = __import__(mod)
                have.append([mod, m.get_version()])
            except ImportError:
                pass
        print(json.dumps({'libraries': have}))
        return 0
    mode, fmt, path = argv[1], argv[2], argv[3]
    password = None
    if len(argv) > 4:
        if LIBS.get(fmt) != 'pyqcow':
            raise RuntimeError('a passphrase was given, but %s images have no encryption libyal reads' % fmt)
        with open(argv[4], 'rb') as f:
            password = f.read().decode('utf-8')
    img = open_image(fmt, path, password=password)
    size = img.get_media_size()
    if mode == 'sha256':
        h = hashlib.sha256()
        off = 0
        while off < size:
            n = min(CHUNK, size - off)
            buf = img.read_buffer_at_offset(n, off)
            if len(buf) != n:
                raise RuntimeError('short read at offset %d: %d of %d bytes' % (off, len(buf), n))
            h.update(buf)
            off += n
        print(json.dumps({'sha256': h.hexdigest(), 'size': size}))
        return 0
    if mode == 'verify':
        for offset, length, pattern in json.load(sys.stdin):
            if offset + length > size:
                raise RuntimeError('read at %d+%d is past the end of the %d-byte disk' % (offset, length, size))
            done = 0
            while done < length:
                n = min(CHUNK, length - done)
                buf = img.read_buffer_at_offset(n, offset + done)
                if len(buf) != n:
                    raise RuntimeError('short read at offset %d' % (offset + done))
                if pattern >= 0 and buf.count(pattern) != n:
                    bad = next(i for i, b in enumerate(buf) if b != pattern)
                    print(json.dumps({'mismatch': {'offset': offset + done + bad, 'found': buf[bad], 'expected': pattern}}))
                    return 0
                done += n
        print(json.dumps({'ok': True}))
        return 0
    raise RuntimeError('unknown mode %s' % mode)


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # the library's IOError and friends: reported, not a traceback
        print(json.dumps({'error': '%s: %s' % (type(e).__name__, e)}))
        sys.exit(1)
