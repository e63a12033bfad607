#!/usr/bin/env python3
"""Writes the seed corpora from commands.txt: every command and option, as RESP arrays.

corpus/commands/: FuzzCommands inputs ([clock step][length][bytes] chunks); corpus/parser/: the
same requests as raw wire bytes (one mode byte first)."""
import os
import shlex

HERE = os.path.dirname(os.path.abspath(__file__))


def resp(words):
    out = b"*%d\r\n" % len(words)
    for w in words:
        b = w.encode()
        out += b"$%d\r\n%s\r\n" % (len(b), b)
    return out


def main():
    groups, current = [], []
    for line in open(os.path.join(HERE, "commands.txt")):
        line = line.rstrip("\n")
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                groups.append(current)
            current = []
            continue
        current.append(line)
    if current:
        groups.append(current)
    for d in ("commands", "parser"):
        os.makedirs(os.path.join(HERE, "corpus", d), exist_ok=True)
    for n, group in enumerate(groups):
        chunks, wire, step = b"", b"", 0
        for line in group:
            if line.startswith("+"):
                ms = int(line[1:])
                step = min(255, int(ms ** 0.5) + 1)
                continue
            body = resp(shlex.split(line))
            for i in range(0, len(body), 255):
                piece = body[i:i + 255]
                chunks += bytes([step, len(piece)]) + piece
                step = 0
            wire += body
        with open(os.path.join(HERE, "corpus", "commands", f"seed{n:02d}"), "wb") as f:
            f.write(chunks)
        with open(os.path.join(HERE, "corpus", "parser", f"seed{n:02d}"), "wb") as f:
            f.write(bytes([n]) + wire)
        # Inline forms too, for the parser.
        with open(os.path.join(HERE, "corpus", "parser", f"inline{n:02d}"), "wb") as f:
            f.write(bytes([n + 1]) + "\r\n".join(l for l in group if not l.startswith("+")).encode() + b"\r\n")


if __name__ == "__main__":
    main()
