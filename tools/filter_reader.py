#!/usr/bin/env python3
"""An independent reader for hibp-mirror filter files, written from docs/FILTER.md alone.

Plain Python 3 (standard library only). It shows what a C, C# or Go integrator has to write:
parse the header and shard table, check them, and run the query arithmetic.

Usage:
    filter_reader.py FILTER [--verify] < hashes.txt
        Reads one full hash (hex, either case) per line; prints
        "HASH probably-breached" or "HASH not-breached" for each.
    filter_reader.py FILTER --info
        Prints the header fields.

Exits 2 with one line on stderr if the file is refused.
"""

import mmap
import struct
import sys
import zlib

MAGIC = b"HIBPFLT\x00"
HEADER_LEN = 128
ENTRY_LEN = 40
KINDS = {1: ("sha1", 20), 2: ("ntlm", 16)}
M64 = (1 << 64) - 1


class Refused(Exception):
    """The file is not a valid version-1 filter."""


def align8(x):
    return (x + 7) // 8 * 8


class FilterFile:
    def __init__(self, data):
        self.data = data
        n = len(data)
        if n < HEADER_LEN:
            raise Refused(f"file is {n} bytes, too short for a header (truncated?)")
        head = bytes(data[:HEADER_LEN])
        if head[0:8] != MAGIC:
            raise Refused("wrong magic bytes: not a hibp-mirror filter")
        (version,) = struct.unpack_from("<I", head, 8)
        if version != 1:
            raise Refused(f"unsupported version {version}")
        (header_len,) = struct.unpack_from("<I", head, 12)
        zeroed = head[:20] + b"\x00\x00\x00\x00" + head[24:]
        (header_crc,) = struct.unpack_from("<I", head, 20)
        if zlib.crc32(zeroed) != header_crc:
            raise Refused("header checksum mismatch")
        if header_len != HEADER_LEN:
            raise Refused(f"header_len {header_len}")
        kind, bits, shard_bits, scheme = head[16], head[17], head[18], head[19]
        if kind not in KINDS:
            raise Refused(f"unknown hash kind {kind}")
        if bits not in (8, 16):
            raise Refused(f"unknown fingerprint width {bits}")
        if scheme != 1:
            raise Refused(f"unknown key scheme {scheme}")
        if shard_bits > 20:
            raise Refused(f"shard_bits {shard_bits} > 20")
        (self.key_count, file_len, self.build_time) = struct.unpack_from("<QQQ", head, 24)
        (table_crc, self.min_count, self.top) = struct.unpack_from("<IIQ", head, 48)
        (self.fp_rate,) = struct.unpack_from("<d", head, 64)
        (self.source_records,) = struct.unpack_from("<Q", head, 72)
        if file_len != n:
            raise Refused(f"file is {n} bytes but the header says {file_len} (truncated?)")
        self.kind_name, self.hash_len = KINDS[kind]
        self.bits = bits
        self.width = bits // 8
        self.shard_bits = shard_bits
        shards = 1 << shard_bits
        table_end = HEADER_LEN + shards * ENTRY_LEN
        if n < table_end:
            raise Refused("file too short for its shard table")
        table = bytes(data[HEADER_LEN:table_end])
        if zlib.crc32(table) != table_crc:
            raise Refused("shard table checksum mismatch")
        self.shards = []
        expected = align8(table_end)
        end = expected
        total = 0
        for s in range(shards):
            seed, offset, count, seg_len, seg_mask, seg_count_len, keys, crc = struct.unpack_from(
                "<QQIIIIII", table, s * ENTRY_LEN
            )
            if keys == 0:
                if (seed, count, seg_len, seg_mask, seg_count_len) != (0, 0, 0, 0, 0):
                    raise Refused(f"shard {s}: empty shard with a non-zero descriptor")
            else:
                if seg_len == 0 or seg_len & (seg_len - 1):
                    raise Refused(f"shard {s}: segment length {seg_len} not a power of two")
                if seg_mask != seg_len - 1:
                    raise Refused(f"shard {s}: bad segment length mask")
                if seg_count_len == 0 or seg_count_len % seg_len:
                    raise Refused(f"shard {s}: bad segment count length")
                if count != seg_count_len + 2 * seg_len:
                    raise Refused(f"shard {s}: fingerprint count {count} != C + 2L")
                if keys > count:
                    raise Refused(f"shard {s}: more keys than fingerprints")
            if offset != expected:
                raise Refused(f"shard {s}: offset {offset}, expected {expected}")
            end = offset + count * self.width
            expected = align8(end)
            total += keys
            self.shards.append((seed, offset, count, seg_len, seg_count_len, keys, crc))
        if end != n:
            raise Refused(f"shards end at {end}, file is {n} bytes")
        if total != self.key_count:
            raise Refused("shard key counts do not add up to key_count")

    def verify(self):
        for s, (_, offset, count, _, _, _, crc) in enumerate(self.shards):
            if zlib.crc32(self.data[offset : offset + count * self.width]) != crc:
                raise Refused(f"shard {s}: fingerprint checksum mismatch")

    def fp(self, offset, i):
        if self.width == 1:
            return self.data[offset + i]
        at = offset + 2 * i
        return self.data[at] | self.data[at + 1] << 8

    def contains_key(self, key):
        s = key >> (64 - self.shard_bits) if self.shard_bits else 0
        seed, offset, _, seg_len, seg_count_len, keys, _ = self.shards[s]
        if keys == 0:
            return False
        h = (key + seed) & M64
        h ^= h >> 33
        h = (h * 0xFF51AFD7ED558CCD) & M64
        h ^= h >> 33
        h = (h * 0xC4CEB9FE1A85EC53) & M64
        h ^= h >> 33
        f = (h ^ (h >> 32)) & ((1 << self.bits) - 1)
        mask = seg_len - 1
        h0 = (h * seg_count_len) >> 64
        h1 = (h0 + seg_len) ^ ((h >> 18) & mask)
        h2 = (h0 + 2 * seg_len) ^ (h & mask)
        return f ^ self.fp(offset, h0) ^ self.fp(offset, h1) ^ self.fp(offset, h2) == 0

    def contains_hash(self, raw):
        if len(raw) != self.hash_len:
            raise ValueError(
                f"a {len(raw)}-byte hash cannot be checked against a {self.kind_name} filter"
            )
        return self.contains_key(int.from_bytes(raw[:8], "big"))


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a for a in argv[1:] if a.startswith("--")}
    if len(args) != 1 or not flags <= {"--verify", "--info"}:
        sys.stderr.write(__doc__)
        return 64
    try:
        with open(args[0], "rb") as f:
            try:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file cannot be mapped
                data = b""
        filt = FilterFile(data)
        if "--verify" in flags:
            filt.verify()
    except (OSError, Refused) as e:
        print(f"filter_reader: {args[0]}: refused: {e}", file=sys.stderr)
        return 2
    if "--info" in flags:
        print(f"kind={filt.kind_name} bits={filt.bits} shards={len(filt.shards)} "
              f"keys={filt.key_count} fp_rate={filt.fp_rate} min_count={filt.min_count} "
              f"top={filt.top} source_records={filt.source_records}")
        return 0
    out = sys.stdout
    for number, line in enumerate(sys.stdin, 1):
        text = line.strip()
        try:
            raw = bytes.fromhex(text)
            answer = filt.contains_hash(raw)
        except ValueError as e:
            print(f"filter_reader: stdin:{number}: {e}", file=sys.stderr)
            return 2
        out.write(f"{text.upper()} {'probably-breached' if answer else 'not-breached'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
